// gpu suite: every W6 kernel against the CPU reference (kernels/quant_pack/w6_ref.h).
//   - fused activation quantization (int8, bit planes, per token): codes and scales bit-exact;
//   - the quantizer inside RMSNorm (also with the residual add in the same pass: the sum bit-exact to
//     the fp16 add) and SiLU x up (producer_quant.h): codes and scales bit-exact for
//     the y they compute, y within one fp16 ulp of the double-precision formula;
//   - the quantizer inside w6_imma's decode GEMM (m <= 8): its division-free code checked on every
//     fp16 input, its integers bit-exact and its outputs bit-identical to act_quant_int8 + GEMM;
//   - w6_imma and flexq_btc (A6, A8): per-group int32 accumulators bit-exact against the int64
//     reference for m in {1, 3, 8, 12, 16, 17, 33, 64, 65, 118, 200} (every kernel configuration
//     and its token tails), n residues (37, 100), k residues (128, 384, 1152); outputs poisoned
//     (0xFFFF = fp16 NaN) before each launch;
//   - decode8's K split per block (decode8_k_split: 8, 6, 4, 3, 2 or 1 warps) on layers of few and
//     of many row tiles;
//   - fp16 outputs within a stated tolerance of the double-precision reference, with tiny and huge
//     scales; w6_imma and flexq_btc agree; cuBLASLt W8A8 and the legacy call against the CPU;
//   - cuBLAS calls captured in a CUDA graph: no allocation nodes, the direct call's bits.
// One line per failure: identity, metric, value, threshold.
#include "act_code_exhaustive.h"
#include "kernels/device_buffer.h"
#include "kernels/random_halves.h"
#include "common/device_info.h"
#include "cublas_gemm/cublas_gemm.h"
#include "flexq_btc/flexq_btc.h"
#include "quant_pack/act_quant.h"
#include "quant_pack/producer_quant.h"
#include "quant_pack/w6_layout.h"
#include "quant_pack/w6_ref.h"
#include "w6_imma/w6_imma.h"
#include "w6ax/w6ax.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <tuple>
#include <string>
#include <vector>

using namespace qb::w6;

namespace {

template <class T>
using dbuf = qb::test::device_buffer<T>;
using qb::test::random_halves;

quantized_weights random_weights(int n, int k, std::mt19937 &rng, float s_lo, float s_hi) {
    quantized_weights w;
    w.n = n;
    w.k = k;
    std::uniform_int_distribution<int> c(-31, 31);
    std::uniform_real_distribution<float> s(s_lo, s_hi);
    w.q.resize(size_t(n) * k);
    for (auto &v : w.q) {
        v = int8_t(c(rng));
        if (v == 0) v = 7;
    }
    w.scales.resize(size_t(n) * (k / 128));
    for (auto &v : w.scales) v = float_to_half(s(rng));
    return w;
}

// fp16 output tolerance against the double reference: the output rounding (2^-11 relative, and
// at least half the fp16 subnormal spacing, 2^-25, for outputs below 2^-14) plus fp32 accumulation
// over G groups in any order and the two products per term (each within 2^-24 relative):
// (G + 2) * 2^-24 * sum_g |term_g|, doubled for headroom.
double out_tolerance(double ref, double abs_sum, int groups) {
    return std::max(std::fabs(ref) * std::ldexp(1.0, -11), std::ldexp(1.0, -25)) + 2.0 * (groups + 2) * std::ldexp(1.0, -24) * abs_sum;
}

bool is_ok_half(uint16_t h) { return (h & 0x7C00) != 0x7C00; } // not inf / NaN (the poison is NaN)

struct case_result {
    int acc_mismatch = 0, out_fail = 0;
    double worst = 0;
};

// Runs one back-end on one problem and checks the per-group integers and the fp16 output.
// allow_wgmma false keeps w6_imma on its mma.sync path (the one non-sm_90a builds run at every m).
// fused_x (w6_imma, m <= 8): the fp16 activations qa was quantized from, given to the GEMM to
// quantize itself (gemm_args::act_fp16) instead of qa's codes.
case_result run_case(const char *who, int m, int n, int k, int a_bits, const quantized_weights &w, const quantized_acts &qa,
                     std::vector<uint16_t> *out_host = nullptr, bool allow_wgmma = true, const std::vector<uint16_t> *fused_x = nullptr) {
    const bool btc = std::strcmp(who, "flexq_btc") == 0;
    const bool wgmma = !btc && w6_imma_uses_wgmma(m, allow_wgmma);
    const int groups = k / 128;
    auto p = btc ? pack_weights_btc(w) : pack_weights_imma(w);
    dbuf<uint8_t> dw(p.data);
    dbuf<uint16_t> ds(p.scales);
    std::vector<uint32_t> planes;
    if (btc) planes = pack_act_planes_ref(qa.q.data(), m, k, a_bits);
    dbuf<int8_t> dact8(wgmma ? order_acts_wgmma_ref(qa.q.data(), m, k) : qa.q);
    dbuf<uint32_t> dplanes(planes.empty() ? std::vector<uint32_t>(4) : planes);
    dbuf<float> dsx(qa.scales);
    dbuf<uint16_t> dx(fused_x ? *fused_x : std::vector<uint16_t>(8));
    dbuf<__half> dout(size_t(m) * n);
    dbuf<int32_t> dacc(size_t(m) * n * groups);
    dout.poison();
    dacc.poison();
    gemm_args a;
    a.m = m, a.n = n, a.k = k, a.a_bits = a_bits;
    a.w = dw.ptr;
    a.w_scales = reinterpret_cast<const __half *>(ds.ptr);
    a.act = btc ? static_cast<const void *>(dplanes.ptr) : static_cast<const void *>(dact8.ptr);
    a.act_scales = dsx.ptr;
    a.out = dout.ptr;
    a.group_acc = dacc.ptr;
    a.allow_wgmma = allow_wgmma;
    if (fused_x) {
        a.act = nullptr, a.act_scales = nullptr; // not read
        a.act_fp16 = reinterpret_cast<const __half *>(dx.ptr);
    }
    auto st = btc ? flexq_btc_run(a, nullptr) : w6_imma_run(a, nullptr);
    REQUIRE_MESSAGE(st.ok(), st.reason);
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    case_result r;
    auto ref = gemm_group_acc_ref(qa.q.data(), w.q.data(), m, n, k);
    auto acc = dacc.download();
    for (size_t i = 0; i < ref.size(); ++i)
        if (acc[i] != ref[i] && r.acc_mismatch++ < 3)
            MESSAGE((std::string(who) + (wgmma ? " (wgmma)" : "") + (fused_x ? " (fused)" : "")) << "/a" << a_bits << "/m=" << m << ",n=" << n << ",k=" << k << " group acc [" << i << "]: got " << acc[i] << " want "
                        << ref[i] << " FAIL");
    std::vector<double> abs_sum;
    auto ref_out = gemm_scale_ref_f64(ref, qa.scales.data(), w.scales.data(), m, n, k, &abs_sum);
    auto out = dout.download();
    std::vector<uint16_t> out_bits(out.size());
    std::memcpy(out_bits.data(), out.data(), out.size() * 2);
    for (size_t i = 0; i < out_bits.size(); ++i) {
        const double tol = out_tolerance(ref_out[i], abs_sum[i], groups);
        const double got = half_to_float(out_bits[i]);
        const double err = std::fabs(got - ref_out[i]);
        r.worst = std::max(r.worst, err / tol);
        if ((!is_ok_half(out_bits[i]) || err > tol) && r.out_fail++ < 3)
            MESSAGE(std::string(who) << "/a" << a_bits << "/m=" << m << ",n=" << n << ",k=" << k << " out[" << i << "]: |" << got << " - " << ref_out[i]
                        << "| = " << err << " > tol " << tol << " FAIL");
    }
    if (out_host) *out_host = out_bits;
    return r;
}

// fp16 bit patterns on a line (..., -2 ulp, -1 ulp, -0 = 0, 1 ulp, ...): the distance in ulps.
int half_order(uint16_t h) { return (h & 0x8000) ? -int(h & 0x7FFF) : int(h); }

// Codes and scales a producer wrote against the CPU quantizer applied to the y it wrote.
void check_producer_codes(const char *who, const std::vector<uint16_t> &y, int m, int k, int bits, int8_order order,
                          const std::vector<int8_t> &q, const std::vector<float> &s) {
    const auto ref = quantize_acts_ref(y.data(), m, k, bits, 128);
    const auto want = order == int8_order::wgmma_k ? order_acts_wgmma_ref(ref.q.data(), m, k) : ref.q;
    const char *ord = order == int8_order::wgmma_k ? "wgmma_k" : "natural";
    CHECK_MESSAGE(q == want, who << " m=" << m << " k=" << k << " a" << bits << " " << ord << ": codes differ from act_quant of its y");
    CHECK_MESSAGE(std::memcmp(s.data(), ref.scales.data(), s.size() * 4) == 0, who << " m=" << m << " k=" << k << " a" << bits << ": scales differ");
}

} // namespace

TEST_SUITE("gpu") {

TEST_CASE("act_quant: int8 codes, bit planes and per-token codes are bit-exact against the CPU formula") {
    std::mt19937 rng(21);
    for (int m : {1, 3, 8, 17, 118})
        for (int k : {128, 384, 4096})
            for (int bits : {6, 8}) {
                auto x = random_halves(size_t(m) * k, 4.f, rng);
                // Exact ties: a group whose absmax is 31 (6-bit scale 1): codes rint(x) with .5 values.
                if (k >= 256) {
                    x[128] = float_to_half(31.f);
                    x[129] = float_to_half(2.5f);
                    x[130] = float_to_half(-3.5f);
                    x[131] = float_to_half(0.5f);
                }
                // An all-zero group (scale 0, codes 0) in the last token.
                for (int i = 0; i < 128; ++i) x[size_t(m - 1) * k + i] = 0;
                auto ref = quantize_acts_ref(x.data(), m, k, bits, 128);
                dbuf<uint16_t> dx(x);
                dbuf<int8_t> dq(size_t(m) * k), dqw(size_t(m) * k);
                dbuf<float> ds(size_t(m) * (k / 128));
                dbuf<uint32_t> dp(size_t(m) * (k / 128) * 4 * bits);
                dbuf<float> ds2(size_t(m) * (k / 128));
                dq.poison(), ds.poison(), dp.poison(), ds2.poison();
                auto *xh = reinterpret_cast<const __half *>(dx.ptr);
                REQUIRE(act_quant_int8(xh, m, k, bits, dq.ptr, ds.ptr, nullptr).ok());
                REQUIRE(act_quant_int8(xh, m, k, bits, dqw.ptr, ds2.ptr, nullptr, int8_order::wgmma_k).ok());
                REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
                CHECK_MESSAGE(dqw.download() == order_acts_wgmma_ref(ref.q.data(), m, k), "act_quant_int8 wgmma_k m=" << m << " k=" << k << " bits=" << bits);
                REQUIRE(act_quant_planes(xh, m, k, bits, dp.ptr, ds2.ptr, nullptr).ok());
                REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
                const auto q = dq.download();
                const auto s = ds.download(), s2 = ds2.download();
                const auto planes = dp.download();
                CHECK_MESSAGE(q == ref.q, "act_quant_int8 m=" << m << " k=" << k << " bits=" << bits);
                CHECK_MESSAGE(std::memcmp(s.data(), ref.scales.data(), s.size() * 4) == 0, "scales m=" << m << " k=" << k);
                CHECK_MESSAGE(std::memcmp(s2.data(), ref.scales.data(), s2.size() * 4) == 0, "plane scales m=" << m << " k=" << k);
                CHECK_MESSAGE(planes == pack_act_planes_ref(ref.q.data(), m, k, bits), "act_quant_planes m=" << m << " k=" << k << " bits=" << bits);
                if (bits == 8) {
                    auto reft = quantize_acts_ref(x.data(), m, k, 8, k);
                    dbuf<float> dst(m);
                    dq.poison();
                    REQUIRE(act_quant_token(xh, m, k, dq.ptr, dst.ptr, nullptr).ok());
                    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
                    CHECK_MESSAGE(dq.download() == reft.q, "act_quant_token m=" << m << " k=" << k);
                    CHECK(dst.download() == reft.scales);
                }
            }
}

TEST_CASE("RMSNorm and SiLU x up with the quantizer inside: codes bit-exact for their y, y within one fp16 ulp") {
    // y tolerance: the kernels compute in fp32 (a sum of <= 28,672 squares in a fixed tree, rsqrtf,
    // two products; or expf and an IEEE division), within ~1e-6 relative of the exact value, against
    // fp16's half ulp of 2^-12 = 2.4e-4 relative: y is the correctly rounded fp16 value or, where the
    // exact value lies that close to a rounding boundary, its neighbour. So one ulp, never more.
    std::mt19937 rng(51);
    std::normal_distribution<float> gain_d(1.f, 0.1f);
    int near = 0, total = 0;
    // k: 1 and 3 warps; 32 warps holding 1, 3 (of 4) and 7 (of 8) groups each.
    for (int m : {1, 3, 8, 17, 118})
        for (int k : {128, 384, 4096, 11008, 28672}) {
            if (k == 28672 && m > 17) continue;
            const int groups = k / 128;
            auto x = random_halves(size_t(m) * k, 4.f, rng);
            for (int i = 0; i < k; ++i) x[size_t(m - 1) * k + i] = 0; // an all-zero token: y = 0, scale 0
            std::vector<uint16_t> gain(k);
            for (auto &v : gain) v = float_to_half(gain_d(rng));
            auto gate_up = random_halves(size_t(m) * 2 * k, 8.f, rng); // [m, 2k]: gate | up, as a fused gate_up GEMM writes
            for (int i = 0; i < 32; ++i) gate_up[i] = float_to_half(-20.f + i * 0.5f); // silu's flat tail
            const float eps = 1e-5f;
            dbuf<uint16_t> dx(x), dgain(gain), dgu(gate_up);
            dbuf<uint16_t> dy(size_t(m) * k), dy2(size_t(m) * k);
            dbuf<int8_t> dq(size_t(m) * k), dq2(size_t(m) * k);
            dbuf<float> ds(size_t(m) * groups), ds2(size_t(m) * groups);
            auto *xh = reinterpret_cast<const __half *>(dx.ptr);
            auto *gh = reinterpret_cast<const __half *>(dgain.ptr);
            auto *guh = reinterpret_cast<const __half *>(dgu.ptr);
            auto *yh = reinterpret_cast<__half *>(dy.ptr);
            // The CPU formulas, in double.
            std::vector<uint16_t> y_norm(size_t(m) * k), y_silu(size_t(m) * k);
            std::vector<double> norm_exact(size_t(m) * k);
            for (int r = 0; r < m; ++r) {
                double ss = 0;
                for (int i = 0; i < k; ++i) ss += double(half_to_float(x[size_t(r) * k + i])) * half_to_float(x[size_t(r) * k + i]);
                const double inv = 1.0 / std::sqrt(ss / k + double(eps));
                for (int i = 0; i < k; ++i) norm_exact[size_t(r) * k + i] = half_to_float(x[size_t(r) * k + i]) * inv * half_to_float(gain[i]);
            }
            for (const int bits : {6, 8})
                for (const auto order : {int8_order::natural, int8_order::wgmma_k}) {
                    // RMSNorm: y and codes together, then codes only (chained by PDL), then y only.
                    dy.poison(), dq.poison(), ds.poison(), dy2.poison(), dq2.poison(), ds2.poison();
                    REQUIRE(rmsnorm_quant_int8(xh, gh, eps, m, k, yh, {dq.ptr, ds.ptr, bits, order}, nullptr).ok());
                    REQUIRE(rmsnorm_quant_int8(xh, gh, eps, m, k, nullptr, {dq2.ptr, ds2.ptr, bits, order}, nullptr, true).ok());
                    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
                    const auto y = dy.download();
                    const auto q = dq.download();
                    const auto s = ds.download();
                    check_producer_codes("rmsnorm_quant_int8", y, m, k, bits, order, q, s);
                    CHECK_MESSAGE(dq2.download() == q, "rmsnorm_quant_int8 m=" << m << " k=" << k << ": codes without y differ from codes with y");
                    CHECK(ds2.download() == s);
                    if (bits == 6 && order == int8_order::natural) {
                        int fails = 0;
                        for (size_t i = 0; i < y.size(); ++i) {
                            const int d = std::abs(half_order(y[i]) - half_order(float_to_half(float(norm_exact[i]))));
                            near += d == 1, ++total;
                            if (d > 1 && fails++ < 3)
                                MESSAGE("rmsnorm m=" << m << " k=" << k << " y[" << i << "] = " << half_to_float(y[i]) << ", formula " << norm_exact[i] << " FAIL");
                        }
                        CHECK_MESSAGE(fails == 0, "rmsnorm m=" << m << " k=" << k << ": " << fails << " values beyond one ulp");
                        REQUIRE(rmsnorm_quant_int8(xh, gh, eps, m, k, reinterpret_cast<__half *>(dy2.ptr), {}, nullptr).ok());
                        REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
                        CHECK_MESSAGE(dy2.download() == y, "rmsnorm m=" << m << " k=" << k << ": y without codes differs from y with codes");
                    }
                    {
                        // The residual add in the same pass: the sum bit-exact to the model's fp16
                        // add (fp32 sum, one rounding), y and codes bit-identical to the plain kernel's
                        // on that sum.
                        const auto delta = random_halves(size_t(m) * k, 2.f, rng);
                        std::vector<uint16_t> sum_ref(delta.size());
                        for (size_t i = 0; i < delta.size(); ++i) sum_ref[i] = float_to_half(half_to_float(x[i]) + half_to_float(delta[i]));
                        dbuf<uint16_t> dd(delta), dsum(delta.size()), dy3(delta.size()), dy4(delta.size());
                        dbuf<int8_t> dq3(delta.size()), dq4(delta.size());
                        dbuf<float> ds3(size_t(m) * groups), ds4(size_t(m) * groups);
                        dsum.poison(), dy3.poison(), dq3.poison(), ds3.poison();
                        auto *sumh = reinterpret_cast<__half *>(dsum.ptr);
                        REQUIRE(add_rmsnorm_quant_int8(xh, reinterpret_cast<const __half *>(dd.ptr), gh, eps, m, k, sumh, reinterpret_cast<__half *>(dy3.ptr),
                                                       {dq3.ptr, ds3.ptr, bits, order}, nullptr)
                                    .ok());
                        REQUIRE(rmsnorm_quant_int8(sumh, gh, eps, m, k, reinterpret_cast<__half *>(dy4.ptr), {dq4.ptr, ds4.ptr, bits, order}, nullptr).ok());
                        REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
                        CHECK_MESSAGE(dsum.download() == sum_ref, "add_rmsnorm m=" << m << " k=" << k << ": sum differs from the fp16 add");
                        CHECK_MESSAGE(dy3.download() == dy4.download(), "add_rmsnorm m=" << m << " k=" << k << ": y differs from rmsnorm of the sum");
                        CHECK(dq3.download() == dq4.download());
                        CHECK(ds3.download() == ds4.download());
                    }
                    // SiLU x up, gate and up interleaved by row (ld = 2k), as a fused gate_up GEMM writes them.
                    dy.poison(), dq.poison(), ds.poison();
                    REQUIRE(silu_mul_quant_int8(guh, guh + k, 2 * k, m, k, yh, {dq.ptr, ds.ptr, bits, order}, nullptr).ok());
                    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
                    const auto ys = dy.download();
                    check_producer_codes("silu_mul_quant_int8", ys, m, k, bits, order, dq.download(), ds.download());
                    if (bits == 6 && order == int8_order::natural) {
                        // y = fp16(s * u) with s = fp16(silu(g)): accepted with s the rounded formula or a neighbour.
                        int fails = 0;
                        for (int r = 0; r < m; ++r)
                            for (int i = 0; i < k; ++i) {
                                const size_t at = size_t(r) * k + i;
                                const double gv = half_to_float(gate_up[size_t(r) * 2 * k + i]);
                                const float u = half_to_float(gate_up[size_t(r) * 2 * k + k + i]);
                                const uint16_t s_ref = float_to_half(float(gv / (1.0 + std::exp(-gv))));
                                bool ok = false;
                                for (int step : {-1, 0, 1}) {
                                    const int o = half_order(s_ref) + step;
                                    const uint16_t sn = uint16_t(o < 0 ? (0x8000 | -o) : o);
                                    ok |= float_to_half(half_to_float(sn) * u) == ys[at];
                                }
                                if (!ok && fails++ < 3)
                                    MESSAGE("silu_mul m=" << m << " k=" << k << " y[" << at << "] = " << half_to_float(ys[at]) << " for g=" << gv << " u=" << u << " FAIL");
                            }
                        CHECK_MESSAGE(fails == 0, "silu_mul m=" << m << " k=" << k << ": " << fails << " values off the formula");
                    }
                }
        }
    MESSAGE("rmsnorm: " << near << " of " << total << " values one ulp from the rounded double formula, none further");
    // What they refuse.
    dbuf<uint16_t> d(8192);
    auto *h = reinterpret_cast<__half *>(d.ptr);
    dbuf<int8_t> q(8192);
    dbuf<float> s(64);
    const auto bad_k = rmsnorm_quant_int8(h, h, 1e-5f, 1, 4100, h, {}, nullptr);
    CHECK(bad_k.code == qb::status_code::unsupported_shape);
    CHECK(bad_k.reason.find("4100") != std::string::npos);
    CHECK(rmsnorm_quant_int8(h, h, 1e-5f, 1, 32768 + 128, h, {}, nullptr).code == qb::status_code::unsupported_shape);
    CHECK(silu_mul_quant_int8(h, h, 128, 1, 128, nullptr, {}, nullptr).code == qb::status_code::invalid_argument);
    CHECK(silu_mul_quant_int8(h, h, 100, 1, 128, h, {}, nullptr).code == qb::status_code::invalid_argument);
    CHECK(rmsnorm_quant_int8(h, h, 1e-5f, 1, 128, nullptr, {q.ptr, s.ptr, 5}, nullptr).code == qb::status_code::unsupported_option);
    CHECK(add_rmsnorm_quant_int8(h, h, h, 1e-5f, 1, 128, h, nullptr, {}, nullptr).reason.find("must not alias") != std::string::npos);
    CHECK(add_rmsnorm_quant_int8(h, nullptr, h, 1e-5f, 1, 128, h, nullptr, {}, nullptr).code == qb::status_code::invalid_argument);
}

TEST_CASE("the fused quantizer's division-free code equals rint(x / scale) on every fp16 input") {
    // Pairs: every finite amax > 0 (fp16 bits 1 .. 0x7BFF) with every |x| <= amax, both signs.
    unsigned long long pairs = 0;
    for (unsigned long long a = 1; a <= 0x7BFF; ++a) pairs += 2 * (a + 1);
    for (int bits : {6, 8}) {
        const auto r = act_code_exhaustive(bits);
        REQUIRE(r.ran);
        CHECK(r.checked == pairs);
        CHECK_MESSAGE(r.scale_mismatches == 0, "a" << bits << ": " << r.scale_mismatches << " scales differ from amax / qmax");
        CHECK_MESSAGE(r.mismatches == 0, "a" << bits << ": " << r.mismatches << " codes differ; first amax bits 0x" << std::hex << r.first_amax_bits
                                              << " x bits 0x" << r.first_x_bits);
        MESSAGE("act_code a" << bits << ": " << r.checked << " (amax, x) pairs, " << r.mismatches << " mismatches");
    }
}

TEST_CASE("w6_imma with the quantizer fused in (m <= 8): integers bit-exact, outputs identical to act_quant_int8 + GEMM") {
    std::mt19937 rng(23);
    const int nks[][2] = {{37, 128}, {100, 384}, {256, 1152}, {300, 4096}};
    int problems = 0;
    for (int m = 1; m <= 8; ++m)
        for (const auto &nk : nks)
            for (int a_bits : {6, 8}) {
                const int n = nk[0], k = nk[1], groups = k / 128;
                auto w = random_weights(n, k, rng, 0.002f, 0.05f);
                auto x = random_halves(size_t(m) * k, 3.f, rng);
                // Groups that exercise the scale: all zero (scale 0, codes 0), exact ties (absmax 31),
                // fp16 subnormals only, and large values; each in some token of each problem.
                for (int i = 0; i < 128; ++i) x[size_t(m - 1) * k + i] = 0;
                if (groups > 1) {
                    auto *g1 = &x[128];
                    g1[0] = float_to_half(31.f), g1[1] = float_to_half(2.5f), g1[2] = float_to_half(-3.5f), g1[3] = float_to_half(0.5f);
                }
                if (groups > 2) {
                    std::uniform_real_distribution<float> tiny(-3e-6f, 3e-6f);
                    for (int i = 0; i < 128; ++i) x[size_t(m / 2) * k + 256 + i] = float_to_half(tiny(rng));
                    for (int i = 0; i < 128; i += 5) x[size_t(m / 3) * k + 128 + i] = float_to_half(i % 2 ? 300.f : -250.f);
                }
                auto qa = quantize_acts_ref(x.data(), m, k, a_bits, 128);
                std::vector<uint16_t> out_unfused, out_fused;
                const auto ru = run_case("w6_imma", m, n, k, a_bits, w, qa, &out_unfused);
                const auto rf = run_case("w6_imma", m, n, k, a_bits, w, qa, &out_fused, true, &x);
                CHECK_MESSAGE(ru.acc_mismatch + ru.out_fail == 0, "unfused w6_imma a" << a_bits << " m=" << m << " n=" << n << " k=" << k);
                CHECK_MESSAGE(rf.acc_mismatch == 0, "fused a" << a_bits << " m=" << m << " n=" << n << " k=" << k << ": group integers differ");
                CHECK_MESSAGE(out_fused == out_unfused, "fused a" << a_bits << " m=" << m << " n=" << n << " k=" << k << ": fp16 outputs differ from the unfused path");
                ++problems;
            }
    MESSAGE("fused quantizer: " << problems << " problems compared with the unfused path");
    // What it refuses, and why.
    gemm_args a;
    a.m = 9, a.n = 16, a.k = 128, a.a_bits = 8;
    dbuf<uint8_t> dummy(1 << 16);
    a.w = dummy.ptr, a.w_scales = reinterpret_cast<const __half *>(dummy.ptr), a.out = reinterpret_cast<__half *>(dummy.ptr);
    a.act_fp16 = reinterpret_cast<const __half *>(dummy.ptr);
    auto st = w6_imma_run(a, nullptr);
    CHECK(st.code == qb::status_code::unsupported_shape);
    CHECK(st.reason.find("m=9") != std::string::npos);
    a.m = 4, a.a_bits = 4;
    st = w6_imma_run(a, nullptr);
    CHECK(st.code == qb::status_code::unsupported_option);
    CHECK(st.reason.find("a_bits=4") != std::string::npos);
}

TEST_CASE("w6_imma and flexq_btc: per-group int32 bit-exact, fp16 within tolerance, over every configuration") {
    std::mt19937 rng(7);
    // 33 .. 300: the wgmma path on an sm_90a build (tails inside a 128-token tile and a third tile).
    const int ms[] = {1, 3, 8, 12, 16, 17, 33, 64, 65, 118, 200, 300};
    const int nks[][2] = {{37, 128}, {100, 384}, {64, 1152}, {256, 512}, {300, 256}};
    double worst = 0;
    int cases = 0;
    for (int m : ms)
        for (const auto &nk : nks) {
            const int n = nk[0], k = nk[1];
            auto w = random_weights(n, k, rng, 0.002f, 0.05f);
            for (int a_bits : {6, 8}) {
                auto x = random_halves(size_t(m) * k, 3.f, rng);
                auto qa = quantize_acts_ref(x.data(), m, k, a_bits, 128);
                std::vector<uint16_t> out_imma, out_btc;
                auto ri = run_case("w6_imma", m, n, k, a_bits, w, qa, &out_imma);
                auto rb = run_case("flexq_btc", m, n, k, a_bits, w, qa, &out_btc);
                CHECK_MESSAGE(ri.acc_mismatch == 0, "w6_imma a" << a_bits << " m=" << m << " n=" << n << " k=" << k);
                CHECK_MESSAGE(ri.out_fail == 0, "w6_imma out a" << a_bits << " m=" << m << " n=" << n << " k=" << k);
                CHECK_MESSAGE(rb.acc_mismatch == 0, "flexq_btc a" << a_bits << " m=" << m << " n=" << n << " k=" << k);
                CHECK_MESSAGE(rb.out_fail == 0, "flexq_btc out a" << a_bits << " m=" << m << " n=" << n << " k=" << k);
                // Same integers, same scaling formula: the two back-ends agree to fp16 rounding.
                int differ = 0;
                for (size_t i = 0; i < out_imma.size(); ++i) {
                    const double a = half_to_float(out_imma[i]), b = half_to_float(out_btc[i]);
                    if (std::fabs(a - b) > std::ldexp(std::fabs(a), -9) + 1e-6) ++differ;
                }
                CHECK_MESSAGE(differ == 0, "w6_imma vs flexq_btc outputs differ beyond 2 fp16 ulps at " << differ << " places");
                worst = std::max({worst, ri.worst, rb.worst});
                ++cases;
            }
        }
    MESSAGE("w6 kernels: " << cases << " problems x 2 back-ends; worst fp16 error / tolerance = " << worst);
}

TEST_CASE("w6_imma: the mma.sync mid and token-tiled paths stay exact where the wgmma path takes over") {
    // On an sm_90a build m > 32 runs the wgmma kernel; the mid32 and tiled mma.sync configurations
    // are what every other build runs there, so they keep their own check.
    std::mt19937 rng(11);
    for (int m : {33, 64, 65, 200})
        for (int a_bits : {6, 8}) {
            const int n = 100, k = 384;
            auto w = random_weights(n, k, rng, 0.002f, 0.05f);
            auto x = random_halves(size_t(m) * k, 3.f, rng);
            auto qa = quantize_acts_ref(x.data(), m, k, a_bits, 128);
            auto r = run_case("w6_imma", m, n, k, a_bits, w, qa, nullptr, false);
            CHECK_MESSAGE(r.acc_mismatch == 0, "w6_imma mma.sync a" << a_bits << " m=" << m);
            CHECK_MESSAGE(r.out_fail == 0, "w6_imma mma.sync out a" << a_bits << " m=" << m);
        }
}

TEST_CASE("w6 kernels: tiny and huge scales are multiplied in fp32 (no fp16 underflow or overflow)") {
    std::mt19937 rng(9);
    const int m = 8, n = 48, k = 512;
    // Weight scales at the clamp ends (1e-5 is an fp16 subnormal), activation scales tiny or huge:
    // products 1e-5 * 1e-3 would be 0 in fp16; 1e4 * 1e-6 is fine in fp32 only.
    for (auto [lo, hi, xr] : {std::tuple{1e-5f, 2e-5f, 0.03f}, std::tuple{5e3f, 1e4f, 1e-4f}}) {
        auto w = random_weights(n, k, rng, lo, hi);
        auto x = random_halves(size_t(m) * k, xr, rng);
        for (int a_bits : {6, 8}) {
            auto qa = quantize_acts_ref(x.data(), m, k, a_bits, 128);
            for (const char *who : {"w6_imma", "flexq_btc"}) {
                std::vector<uint16_t> out;
                auto r = run_case(who, m, n, k, a_bits, w, qa, &out);
                CHECK_MESSAGE(r.acc_mismatch == 0, std::string(who) << " scales [" << lo << ", " << hi << "]");
                CHECK_MESSAGE(r.out_fail == 0, std::string(who) << " scales [" << lo << ", " << hi << "]");
                int nonzero = 0;
                for (auto h : out) nonzero += (h & 0x7FFF) != 0;
                CHECK_MESSAGE(nonzero > int(out.size()) / 2, std::string(who) << ": outputs underflowed to zero");
            }
        }
    }
}

TEST_CASE("w6 kernels: LLaMA-7B shapes at decode sizes, bit-exact") {
    std::mt19937 rng(17);
    for (auto [n, k] : {std::pair{4096, 4096}, std::pair{4096, 11008}, std::pair{160, 8192}})
        for (int m : {1, 8}) {
            auto w = random_weights(n, k, rng, 0.001f, 0.02f);
            auto x = random_halves(size_t(m) * k, 2.f, rng);
            const int a_bits = k == 11008 ? 8 : 6;
            auto qa = quantize_acts_ref(x.data(), m, k, a_bits, 128);
            for (const char *who : {"w6_imma", "flexq_btc"}) {
                auto r = run_case(who, m, n, k, a_bits, w, qa);
                CHECK_MESSAGE(r.acc_mismatch == 0, std::string(who) << " m=" << m << " n=" << n << " k=" << k);
                CHECK_MESSAGE(r.out_fail == 0, std::string(who) << " m=" << m << " n=" << n << " k=" << k);
            }
        }
}

// One decode8 problem that decode8_k_split gives ks warps per block: w6_imma, flexq_btc and the
// fused quantizer bit-exact, the fused path's fp16 outputs identical to the unfused path's.
static void check_decode8_split(int ks, int m, int n, int k, int a_bits, int sms, std::mt19937 &rng) {
    REQUIRE(decode8_k_split(m, n, k / 128, sms) == ks);
    auto w = random_weights(n, k, rng, 0.002f, 0.05f);
    auto x = random_halves(size_t(m) * k, 3.f, rng);
    auto qa = quantize_acts_ref(x.data(), m, k, a_bits, 128);
    std::vector<uint16_t> out_imma, out_fused;
    const auto ri = run_case("w6_imma", m, n, k, a_bits, w, qa, &out_imma);
    const auto rb = run_case("flexq_btc", m, n, k, a_bits, w, qa);
    const auto rf = run_case("w6_imma", m, n, k, a_bits, w, qa, &out_fused, true, &x);
    const std::string id = "ks=" + std::to_string(ks) + " a" + std::to_string(a_bits) + " m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k);
    CHECK_MESSAGE(ri.acc_mismatch + ri.out_fail == 0, "w6_imma " << id);
    CHECK_MESSAGE(rb.acc_mismatch + rb.out_fail == 0, "flexq_btc " << id);
    CHECK_MESSAGE(rf.acc_mismatch == 0, "w6_imma fused " << id);
    CHECK_MESSAGE(out_fused == out_imma, "w6_imma fused " << id << ": fp16 outputs differ from the unfused path");
}

TEST_CASE("decode8 with 3, 2 and 1 warps per block (layers of many row tiles), bit-exact, fused too") {
    // decode8_k_split depends on the SM count: pick, on this GPU, row-tile counts that select each
    // split (n 5 rows short of whole tiles), and K groups that leave some warps without a group.
    const int sms = qb::cuda::current_device_sm_count(); // what launch_decode8 sizes the split by
    std::mt19937 rng(29);
    int problems = 0;
    for (const int ks : {3, 2, 1}) {
        const int n = 16 * (24 * sms / ks) - 5;
        for (const int k : {256, 640})
            for (const int m : ks == 1 ? std::vector<int>{1} : std::vector<int>{1, 2, 5, 8}) {
                check_decode8_split(ks, m, n, k, k == 640 ? 8 : 6, sms, rng);
                ++problems;
            }
    }
    MESSAGE("decode8 K splits 3 / 2 / 1: " << problems << " problems");
}

TEST_CASE("decode8 with 8 and 6 warps per block (layers of few row tiles), bit-exact, fused too") {
    // The most row tiles each split keeps resident on this GPU (n 5 rows short of whole tiles), and
    // just enough K groups for it plus a remainder, so that some warps run one group more.
    const int sms = qb::cuda::current_device_sm_count(); // what launch_decode8 sizes the split by
    std::mt19937 rng(31);
    int problems = 0;
    for (const int ks : {8, 6}) {
        const int n = 16 * (24 * sms / ks) - 5;
        const int groups = decode8_min_groups_per_warp * ks + ks / 2 + 1;
        REQUIRE(decode8_k_split(1, n, decode8_min_groups_per_warp * ks - 1, sms) != ks); // too few groups for this split
        for (const int m : {1, 3, 8}) {
            check_decode8_split(ks, m, n, 128 * groups, m == 3 ? 8 : 6, sms, rng);
            ++problems;
        }
    }
    MESSAGE("decode8 K splits 8 / 6: " << problems << " problems");
}

TEST_CASE("decode8 with two row tiles per warp (layers of more row tiles than a K split keeps resident), bit-exact") {
    // An odd number of row tiles (the last warp's second tile is padding) just above what the
    // 2-warp split keeps resident on this GPU, n 5 rows short of whole tiles; K of 2 and 5 groups
    // (with 2 warps splitting K, one warp runs a group more or has none).
    const int sms = qb::cuda::current_device_sm_count(); // what launch_decode8 sizes the choice by
    const int tiles = (12 * sms + 7) | 1, n = 16 * tiles - 5;
    REQUIRE(decode8_row_tiles_per_warp(1, n, sms) == 1);           // m = 1 keeps one-warp blocks
    REQUIRE(decode8_row_tiles_per_warp(2, 16 * 12 * sms, sms) == 1); // a 2-warp split is resident
    std::mt19937 rng(37);
    int problems = 0;
    for (const int k : {256, 640})
        for (const int m : {2, 5, 8}) {
            REQUIRE(decode8_row_tiles_per_warp(m, n, sms) == 2);
            const int a_bits = m == 5 ? 6 : 8;
            auto w = random_weights(n, k, rng, 0.002f, 0.05f);
            auto x = random_halves(size_t(m) * k, 3.f, rng);
            auto qa = quantize_acts_ref(x.data(), m, k, a_bits, 128);
            const auto ri = run_case("w6_imma", m, n, k, a_bits, w, qa);
            const auto rb = run_case("flexq_btc", m, n, k, a_bits, w, qa); // one row tile per warp
            const std::string id = "a" + std::to_string(a_bits) + " m=" + std::to_string(m) + " n=" + std::to_string(n) + " k=" + std::to_string(k);
            CHECK_MESSAGE(ri.acc_mismatch + ri.out_fail == 0, "w6_imma " << id);
            CHECK_MESSAGE(rb.acc_mismatch + rb.out_fail == 0, "flexq_btc " << id);
            ++problems;
        }
    MESSAGE("decode8 with two row tiles per warp: " << problems << " problems");
}

TEST_CASE("w6_imma: prefill sizes over long K (many pipeline rounds), bit-exact") {
    // 64 groups cycle the wgmma path's 4-stage ring 16 times; several row blocks and token tiles.
    std::mt19937 rng(19);
    for (auto [m, n, k] : {std::tuple{256, 1024, 8192}, std::tuple{129, 160, 4096}, std::tuple{512, 384, 2048}}) {
        auto w = random_weights(n, k, rng, 0.001f, 0.02f);
        auto x = random_halves(size_t(m) * k, 2.f, rng);
        for (int a_bits : {6, 8}) {
            auto qa = quantize_acts_ref(x.data(), m, k, a_bits, 128);
            auto r = run_case("w6_imma", m, n, k, a_bits, w, qa);
            CHECK_MESSAGE(r.acc_mismatch == 0, "w6_imma a" << a_bits << " m=" << m << " n=" << n << " k=" << k);
            CHECK_MESSAGE(r.out_fail == 0, "w6_imma a" << a_bits << " m=" << m << " n=" << n << " k=" << k);
        }
    }
}

namespace {

enum class chain_mode { imma, imma_fused, btc };

struct chain_layer {
    int n, k, a_bits;
    dbuf<uint8_t> w;
    dbuf<uint16_t> scales;
};
using chain = std::vector<std::unique_ptr<chain_layer>>; // (dbuf owns device memory: never copied)

// Runs the layers on x0 (m tokens), each layer's fp16 output the next one's input, as a model's
// linears follow each other: act_quant_* + GEMM (or the GEMM quantizing itself, imma_fused). The
// buffers are shared between layers as in a model (one set of quantized activations, two outputs
// used in turn), so a launch that ran ahead of the one before it without waiting would read its
// input before it is written, or overwrite what the previous layer still reads. pdl: every launch
// programmatically dependent on the one before (bench_kernels --chain); otherwise one launch at a
// time, synchronized after each. Returns the last layer's output.
std::vector<uint16_t> run_chain(const chain &layers, chain_mode mode, int m, const dbuf<uint16_t> &x0, bool pdl,
                                cudaStream_t st) {
    int max_n = 0, max_k = 0;
    for (const auto &l : layers) max_n = std::max(max_n, l->n), max_k = std::max(max_k, l->k);
    dbuf<uint16_t> out_a(size_t(m) * max_n), out_b(size_t(m) * max_n);
    dbuf<int8_t> x8(size_t(m) * max_k);
    dbuf<uint32_t> planes(size_t(m) * (max_k / 128) * 4 * 8);
    dbuf<float> sx(size_t(m) * (max_k / 128));
    out_a.poison(), out_b.poison(), x8.poison(), planes.poison(), sx.poison();
    const uint16_t *in = x0.ptr;
    for (size_t i = 0; i < layers.size(); ++i) {
        const auto &l = *layers[i];
        uint16_t *out = (i % 2 ? out_b : out_a).ptr;
        const auto *x = reinterpret_cast<const __half *>(in);
        qb::status st_q = qb::status::success();
        if (mode == chain_mode::imma) st_q = act_quant_int8(x, m, l.k, l.a_bits, x8.ptr, sx.ptr, st, w6_imma_act_order(m), pdl);
        if (mode == chain_mode::btc) st_q = act_quant_planes(x, m, l.k, l.a_bits, planes.ptr, sx.ptr, st, pdl);
        REQUIRE_MESSAGE(st_q.ok(), st_q.reason);
        if (!pdl) REQUIRE(cudaStreamSynchronize(st) == cudaSuccess);
        gemm_args a;
        a.m = m, a.n = l.n, a.k = l.k, a.a_bits = l.a_bits;
        a.w = l.w.ptr;
        a.w_scales = reinterpret_cast<const __half *>(l.scales.ptr);
        a.act = mode == chain_mode::btc ? static_cast<const void *>(planes.ptr) : static_cast<const void *>(x8.ptr);
        a.act_scales = sx.ptr;
        if (mode == chain_mode::imma_fused) a.act = nullptr, a.act_scales = nullptr, a.act_fp16 = x;
        a.out = reinterpret_cast<__half *>(out);
        a.pdl = pdl;
        auto st_g = mode == chain_mode::btc ? flexq_btc_run(a, st) : w6_imma_run(a, st);
        REQUIRE_MESSAGE(st_g.ok(), st_g.reason);
        if (!pdl) REQUIRE(cudaStreamSynchronize(st) == cudaSuccess);
        in = out;
    }
    REQUIRE(cudaStreamSynchronize(st) == cudaSuccess);
    std::vector<uint16_t> last(size_t(m) * layers.back()->n);
    REQUIRE(cudaMemcpy(last.data(), in, last.size() * 2, cudaMemcpyDeviceToHost) == cudaSuccess);
    return last;
}

} // namespace

TEST_CASE("layers chained by programmatic dependent launch give the same bits as one launch at a time") {
    // Hidden sizes of a short model (square and non-square layers, both activation widths); weight
    // scales ~ 1 / (18 sqrt(k)) keep the activations' magnitude about constant from layer to layer,
    // so that the last output is finite and depends on every layer. The 28672-row layer at m = 1 is
    // a grid of one-warp blocks filling more than half of the slots (on a 132-SM GPU), the one that
    // lets its successor launch after its main loop instead of at entry (pdl_trigger_at_entry).
    const int dims[] = {4096, 1024, 4096, 4096, 2048, 1024, 28672, 1024};
    std::mt19937 rng(41);
    chain imma_layers, btc_layers;
    for (size_t i = 0; i + 1 < std::size(dims); ++i) {
        const int k = dims[i], n = dims[i + 1], a_bits = i % 2 ? 8 : 6;
        const float s = 1.f / (18.f * std::sqrt(float(k)));
        auto w = random_weights(n, k, rng, 0.5f * s, 1.5f * s);
        auto pi = pack_weights_imma(w);
        auto pb = pack_weights_btc(w);
        imma_layers.push_back(std::unique_ptr<chain_layer>(new chain_layer{n, k, a_bits, dbuf<uint8_t>(pi.data), dbuf<uint16_t>(pi.scales)}));
        btc_layers.push_back(std::unique_ptr<chain_layer>(new chain_layer{n, k, a_bits, dbuf<uint8_t>(pb.data), dbuf<uint16_t>(pb.scales)}));
    }
    cudaStream_t st = nullptr;
    REQUIRE(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking) == cudaSuccess);
    int chains = 0;
    for (const int m : {1, 5, 8, 24, 200}) {
        dbuf<uint16_t> x0(random_halves(size_t(m) * dims[0], 2.f, rng));
        std::vector<chain_mode> modes{chain_mode::imma};
        if (m <= 8) modes.push_back(chain_mode::imma_fused);
        if (m <= 24) modes.push_back(chain_mode::btc);
        for (const auto mode : modes) {
            const auto &layers = mode == chain_mode::btc ? btc_layers : imma_layers;
            const char *name = mode == chain_mode::imma ? "act_quant_int8 + w6_imma" : mode == chain_mode::btc ? "act_quant_planes + flexq_btc" : "w6_imma fused";
            const auto one_by_one = run_chain(layers, mode, m, x0, false, st);
            const bool finite = std::all_of(one_by_one.begin(), one_by_one.end(), is_ok_half);
            const bool nonzero = std::any_of(one_by_one.begin(), one_by_one.end(), [](uint16_t h) { return (h & 0x7FFF) != 0; });
            CHECK_MESSAGE(finite, name << " m=" << m << ": the sequential chain's output has inf / NaN (scales chosen badly)");
            CHECK_MESSAGE(nonzero, name << " m=" << m << ": the sequential chain's output is all zero");
            // A race shows only sometimes: several chained runs, each compared bit for bit.
            for (int rep = 0; rep < 3; ++rep) {
                const auto chained = run_chain(layers, mode, m, x0, true, st);
                CHECK_MESSAGE(chained == one_by_one, name << " m=" << m << " run " << rep << ": the chained layers' output differs");
                ++chains;
            }
        }
    }
    cudaStreamDestroy(st);
    MESSAGE("chained by PDL: " << chains << " runs of " << imma_layers.size() << " layers, each identical to one launch at a time");
}

TEST_CASE("the W6 back-ends refuse what they cannot do, with the values") {
    CHECK(w6_imma_supports(3, 64, 4100, 8).code == qb::status_code::unsupported_shape);
    CHECK(w6_imma_supports(3, 64, 4100, 8).reason.find("4100") != std::string::npos);
    CHECK(flexq_btc_supports(3, 64, 256, 5).code == qb::status_code::unsupported_option);
    CHECK(flexq_btc_supports(0, 64, 256, 6).code == qb::status_code::invalid_argument);
    CHECK(flexq_btc_supports(1, 1, 128, 8).ok());
    gemm_args a; // null buffers
    a.m = 1, a.n = 16, a.k = 128;
    CHECK(w6_imma_run(a, nullptr).code == qb::status_code::invalid_argument);
    CHECK(w8a8_lt_supports(8, 4097, 4096).code == qb::status_code::unsupported_shape);
}

TEST_CASE("cuBLASLt W8A8 (TN, per-token x per-channel scales) and the legacy cublasGemmEx call against the CPU") {
    std::mt19937 rng(31);
    cublas_context ctx;
    REQUIRE(ctx.init().ok());
    for (auto [m, n, k] : {std::tuple{1, 256, 512}, std::tuple{17, 100, 384}, std::tuple{118, 512, 1024}}) {
        std::uniform_int_distribution<int> c(-127, 127);
        std::vector<int8_t> x(size_t(m) * k), w(size_t(n) * k);
        for (auto &v : x) v = int8_t(c(rng) | 1);
        for (auto &v : w) v = int8_t(c(rng) | 1);
        std::vector<float> sx(m), sw(n);
        std::uniform_real_distribution<float> s(1e-4f, 1e-2f);
        for (auto &v : sx) v = s(rng);
        for (auto &v : sw) v = s(rng);
        dbuf<int8_t> dx(x), dw(w);
        dbuf<float> dsx(sx), dsw(sw);
        dbuf<__half> dout(size_t(m) * n);
        dbuf<int32_t> dacc(size_t(m) * n), dleg(size_t(m) * n);
        dout.poison(), dleg.poison();
        auto st = ctx.gemm_w8a8_lt(m, n, k, dx.ptr, dw.ptr, dsx.ptr, dsw.ptr, dout.ptr, dacc.ptr, nullptr);
        REQUIRE_MESSAGE(st.ok(), st.reason);
        MESSAGE("cublaslt_w8a8 m=" << m << " n=" << n << " k=" << k << ": " << std::string(ctx.lt_note()));
        // Legacy NN reads the weights as [K, N] row-major: give it the transpose.
        std::vector<int8_t> wkn(size_t(k) * n);
        for (int r = 0; r < n; ++r)
            for (int i = 0; i < k; ++i) wkn[size_t(i) * n + r] = w[size_t(r) * k + i];
        dbuf<int8_t> dwkn(wkn);
        auto st2 = ctx.gemm_w8a8_legacy(m, n, k, dx.ptr, dwkn.ptr, dleg.ptr, nullptr);
        REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
        const auto out = dout.download();
        const auto leg = dleg.download();
        int fails = 0, leg_fails = 0;
        for (int r = 0; r < m; ++r)
            for (int cidx = 0; cidx < n; ++cidx) {
                int64_t acc = 0;
                for (int i = 0; i < k; ++i) acc += int64_t(x[size_t(r) * k + i]) * w[size_t(cidx) * k + i];
                const double ref = double(acc) * sx[r] * sw[cidx];
                uint16_t h;
                std::memcpy(&h, &out[size_t(r) * n + cidx], 2);
                // fp16 output rounding plus fp32 scaling of an exact integer (a few 2^-24 relative).
                const double tol = std::fabs(ref) * (std::ldexp(1.0, -11) + 8 * std::ldexp(1.0, -24)) + 1e-7;
                if (std::fabs(half_to_float(h) - ref) > tol && fails++ < 3)
                    MESSAGE("cublaslt_w8a8 (" << r << "," << cidx << "): " << half_to_float(h) << " vs " << ref << " FAIL");
                if (st2.ok() && leg[size_t(r) * n + cidx] != acc && leg_fails++ < 3)
                    MESSAGE("cublas_w8a8_legacy (" << r << "," << cidx << "): " << leg[size_t(r) * n + cidx] << " vs " << acc << " FAIL");
            }
        CHECK(fails == 0);
        if (!st2.ok()) MESSAGE("cublas_w8a8_legacy refused: " << st2.reason);
        CHECK(leg_fails == 0);
    }
}

TEST_CASE("cuBLAS calls captured in a CUDA graph allocate nothing and replay the direct call's bits") {
    // cublasSetStream drops a handle's workspace. Had the context not set its own again, these
    // split-K shapes (M = 1 on N = 4096, as o and down in a LLaMA-2-7B decode step) would put a
    // cudaMallocAsync and its free into the graph, which the fp16 baseline then replays per token.
    cublas_context ctx;
    REQUIRE(ctx.init().ok());
    cudaStream_t stream = nullptr;
    REQUIRE(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) == cudaSuccess);
    std::mt19937 rng(47);
    auto check_capture = [&](const char *what, auto &out, auto launch) {
        CAPTURE(what);
        REQUIRE(launch(stream).ok());
        REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
        const auto direct = out.download();
        out.poison();
        cudaGraph_t graph = nullptr;
        REQUIRE(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
        const auto st = launch(stream);
        REQUIRE(cudaStreamEndCapture(stream, &graph) == cudaSuccess);
        REQUIRE_MESSAGE(st.ok(), st.reason);
        size_t count = 0;
        REQUIRE(cudaGraphGetNodes(graph, nullptr, &count) == cudaSuccess);
        std::vector<cudaGraphNode_t> nodes(count);
        REQUIRE(cudaGraphGetNodes(graph, nodes.data(), &count) == cudaSuccess);
        int kernels = 0, allocs = 0, others = 0;
        for (auto node : nodes) {
            cudaGraphNodeType type;
            REQUIRE(cudaGraphNodeGetType(node, &type) == cudaSuccess);
            if (type == cudaGraphNodeTypeKernel) ++kernels;
            else if (type == cudaGraphNodeTypeMemAlloc || type == cudaGraphNodeTypeMemFree) ++allocs;
            else ++others;
        }
        MESSAGE(what << ": " << kernels << " kernel nodes, " << allocs << " alloc/free nodes, " << others << " others");
        CHECK(kernels >= 1);
        CHECK(allocs == 0);
        cudaGraphExec_t exec = nullptr;
        REQUIRE(cudaGraphInstantiate(&exec, graph, 0) == cudaSuccess);
        REQUIRE(cudaGraphLaunch(exec, stream) == cudaSuccess);
        REQUIRE(cudaStreamSynchronize(stream) == cudaSuccess);
        CHECK(out.download() == direct); // the same algorithm and workspace: the same bits
        cudaGraphExecDestroy(exec);
        cudaGraphDestroy(graph);
    };
    for (auto [m, n, k] : {std::tuple{1, 4096, 4096}, std::tuple{1, 4096, 11008}, std::tuple{8, 4096, 11008}}) {
        CAPTURE(m);
        CAPTURE(n);
        CAPTURE(k);
        dbuf<uint16_t> x(random_halves(size_t(m) * k, 1.f, rng)), w(random_halves(size_t(n) * k, 0.05f, rng)), out(size_t(m) * n);
        check_capture("fp16", out, [&](cudaStream_t s) {
            return ctx.gemm_fp16(m, n, k, reinterpret_cast<const __half *>(x.ptr), reinterpret_cast<const __half *>(w.ptr),
                                 reinterpret_cast<__half *>(out.ptr), s);
        });
        std::uniform_int_distribution<int> c(-127, 127);
        std::vector<int8_t> xi(size_t(m) * k), wi(size_t(k) * n);
        for (auto &v : xi) v = int8_t(c(rng) | 1);
        for (auto &v : wi) v = int8_t(c(rng) | 1);
        dbuf<int8_t> dxi(xi), dwi(wi);
        dbuf<int32_t> acc(size_t(m) * n);
        check_capture("legacy int8", acc, [&](cudaStream_t s) { return ctx.gemm_w8a8_legacy(m, n, k, dxi.ptr, dwi.ptr, acc.ptr, s); });
    }
    cudaStreamDestroy(stream);
}

TEST_CASE("w6ax picks a back-end for every m") {
    for (int m : {1, 8, 64, 2048}) {
        const auto c = w6ax_choose(m, 4096, 4096, 6);
        MESSAGE("w6ax m=" << m << ": " << std::string(w6ax_choice_name(c)));
        CHECK((c == w6ax_choice::w6ax_choice_imma || c == w6ax_choice::w6ax_choice_btc));
    }
    // The fused quantizer only where w6_imma can run it (m <= 8, 6- or 8-bit codes).
    for (int m : {1, 2, 4, 8}) MESSAGE("w6ax fuses the quantizer at m=" << m << " on 4096 x 4096: " << w6ax_fuse_act(m, 4096, 4096, 6));
    CHECK_FALSE(w6ax_fuse_act(9, 16, 128, 8));
    CHECK_FALSE(w6ax_fuse_act(1, 16, 128, 4));
    CHECK_FALSE(w6ax_fuse_act(1, 1 << 20, 1 << 20, 8)); // a huge layer: the separate quantizer
}

TEST_CASE("w6ax decides by the tables measured on this GPU, the H100's where there are none") {
    const std::string h100 = w6ax_tables_source_on("NVIDIA H100 80GB HBM3"), h200 = w6ax_tables_source_on("NVIDIA H200");
    CHECK(h100.find("H100") != std::string::npos);
    CHECK(h200.find("H200") != std::string::npos);
    CHECK(std::string(w6ax_tables_source_on("NVIDIA A100-SXM4-80GB")) == h100); // no tables of its own
    const std::string &gpu = qb::cuda::current_device_name();
    MESSAGE("w6ax on " << gpu << ": " << std::string(w6ax_tables_source()));
    CHECK(std::string(w6ax_tables_source()) == w6ax_tables_source_on(gpu));
    // The current device decides by its own tables; how often the two GPUs' tables disagree on a
    // few benchmark layers is informational (they are regenerated from each GPU's runs).
    int differ = 0;
    for (int m : {1, 2, 4, 8})
        for (long long nk : {4096LL * 4096, 5120LL * 5120, 11008LL * 4096, 28672LL * 8192}) {
            const int n = int(nk / 4096), k = 4096;
            differ += w6ax_fuse_act_on("NVIDIA H100 80GB HBM3", m, n, k, 6) != w6ax_fuse_act_on("NVIDIA H200", m, n, k, 6);
            CHECK(w6ax_fuse_act(m, n, k, 6) == w6ax_fuse_act_on(gpu, m, n, k, 6));
        }
    MESSAGE("H100 and H200 tables differ on " << differ << " of 16 (m, layer) fuse decisions");
}

} // TEST_SUITE
