// cpu suite: the W6 formats without a GPU. The CPU reference (quantizers, packers, the int64
// grouped GEMM) against hand-computed values, and the packed layouts against a lane-by-lane
// emulation of the tensor-core fragments the kernels feed (mma.sync m16n8k32 s8 and m16n8k256
// b1 and.popc, PTX ISA fragment layouts): if these pass, the packing and the register unpack
// are right and only the CUDA plumbing is left for the gpu suite.
#include "quant_pack/w6_layout.h"
#include "quant_pack/w6_ref.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <tuple>
#include <vector>

using namespace qb::w6;

namespace {

std::vector<int8_t> random_codes(size_t n, int lo, int hi, std::mt19937 &rng) {
    std::uniform_int_distribution<int> d(lo, hi);
    std::vector<int8_t> v(n);
    for (auto &x : v) x = int8_t(d(rng));
    return v;
}

quantized_weights random_weights(int n, int k, std::mt19937 &rng) {
    quantized_weights w;
    w.n = n;
    w.k = k;
    w.q = random_codes(size_t(n) * k, -32, 31, rng); // -32 included: the packers must carry every 6-bit code
    std::uniform_real_distribution<float> s(0.001f, 0.1f);
    w.scales.resize(size_t(n) * (k / 128));
    for (auto &x : w.scales) x = float_to_half(s(rng));
    return w;
}

// Emulates one m16n8k32 s8 mma of a warp: A from the 32 lanes' a0..a3, B from b0, b1.
void emulate_mma_s8(const uint32_t a[32][4], const uint32_t b[32][2], int32_t d[16][8]) {
    int8_t A[16][32], B[32][8];
    for (int lane = 0; lane < 32; ++lane) {
        const int gid = lane / 4, t = lane % 4;
        for (int e = 0; e < 4; ++e) {
            A[gid][4 * t + e] = int8_t(a[lane][0] >> (8 * e));
            A[gid + 8][4 * t + e] = int8_t(a[lane][1] >> (8 * e));
            A[gid][16 + 4 * t + e] = int8_t(a[lane][2] >> (8 * e));
            A[gid + 8][16 + 4 * t + e] = int8_t(a[lane][3] >> (8 * e));
            B[4 * t + e][gid] = int8_t(b[lane][0] >> (8 * e));
            B[16 + 4 * t + e][gid] = int8_t(b[lane][1] >> (8 * e));
        }
    }
    for (int r = 0; r < 16; ++r)
        for (int c = 0; c < 8; ++c) {
            int32_t s = 0;
            for (int x = 0; x < 32; ++x) s += int32_t(A[r][x]) * int32_t(B[x][c]);
            d[r][c] += s;
        }
}

// Emulates one m16n8k256 b1 and.popc mma: A rows from a0..a3 (a2/a3: the second 128 bits).
void emulate_bmma(const uint32_t a[32][4], const uint32_t b[32][2], int32_t d[16][8]) {
    uint32_t A[16][8] = {}, B[8][8] = {}; // 8 words of 32 bits per row / column
    for (int lane = 0; lane < 32; ++lane) {
        const int gid = lane / 4, t = lane % 4;
        A[gid][t] = a[lane][0];
        A[gid + 8][t] = a[lane][1];
        A[gid][4 + t] = a[lane][2];
        A[gid + 8][4 + t] = a[lane][3];
        B[gid][t] = b[lane][0];
        B[gid][4 + t] = b[lane][1];
    }
    for (int r = 0; r < 16; ++r)
        for (int c = 0; c < 8; ++c)
            for (int w = 0; w < 8; ++w) d[r][c] += std::popcount(A[r][w] & B[c][w]);
}

const uint32_t *tile_words(const packed_weights &p, int nt, int g) {
    return reinterpret_cast<const uint32_t *>(p.data.data()) + (size_t(nt) * (p.k / 128) + g) * (tile_bytes / 4);
}

} // namespace

TEST_SUITE("w6_ref") {

TEST_CASE("fp16 conversion: exact values, ties to even, subnormals, overflow") {
    CHECK(float_to_half(1.0f) == 0x3C00);
    CHECK(float_to_half(-2.0f) == 0xC000);
    CHECK(float_to_half(65504.f) == 0x7BFF);
    CHECK(float_to_half(65520.f) == 0x7C00);                     // rounds up to inf
    CHECK(float_to_half(1.0f + std::ldexp(1.f, -11)) == 0x3C00); // tie -> even mantissa
    CHECK(float_to_half(1.0f + 3 * std::ldexp(1.f, -11)) == 0x3C02);
    CHECK(float_to_half(std::ldexp(1.f, -24)) == 0x0001); // smallest subnormal
    CHECK(float_to_half(std::ldexp(1.f, -26)) == 0x0000); // below half of it
    CHECK(float_to_half(1e-5f) == 0x00A8);                // 1e-5 = 167.77 * 2^-24 -> 168
    for (uint32_t h = 0; h < 0x7C00; ++h) CHECK_MESSAGE(float_to_half(half_to_float(uint16_t(h))) == h, "round trip of half " << h);
    CHECK(half_to_float(0x3555) == 0.333251953125f); // 0.25 * (1 + 341/1024)
}

TEST_CASE("activation quantization: scale, ties to even, clamp, zero group, per-token mode") {
    // One token, one group: absmax 31 -> scale exactly 1 (6-bit): codes are rint(x), ties to even.
    std::vector<uint16_t> x(128, float_to_half(0.25f));
    x[0] = float_to_half(31.f);
    x[1] = float_to_half(2.5f);   // tie -> 2
    x[2] = float_to_half(-3.5f);  // tie -> -4
    x[3] = float_to_half(-31.f);
    x[4] = float_to_half(0.5f);   // tie -> 0
    x[5] = float_to_half(1.5f);   // tie -> 2
    auto q = quantize_acts_ref(x.data(), 1, 128, 6, 128);
    CHECK(q.scales[0] == 1.0f);
    CHECK(q.q[0] == 31);
    CHECK(q.q[1] == 2);
    CHECK(q.q[2] == -4);
    CHECK(q.q[3] == -31);
    CHECK(q.q[4] == 0);
    CHECK(q.q[5] == 2);
    CHECK(q.q[6] == 0); // 0.25 -> 0
    // 8-bit: scale = absmax / 127 in fp32; the max element maps to +-127.
    x[0] = float_to_half(-6.f);
    for (int i = 1; i < 128; ++i) x[i] = float_to_half(float(i % 7) - 3.f);
    auto q8 = quantize_acts_ref(x.data(), 1, 128, 8, 128);
    CHECK(q8.scales[0] == 6.f / 127.f);
    CHECK(q8.q[0] == -127);
    CHECK(q8.q[4] == int(std::nearbyint(1.f / (6.f / 127.f)))); // 4 % 7 - 3 = 1 -> 21
    // An all-zero group has scale 0 and codes 0 (no NaN).
    std::vector<uint16_t> z(2 * 256, 0);
    z[128 + 5] = float_to_half(-1.f); // token 0, group 1 non-zero
    auto qz = quantize_acts_ref(z.data(), 2, 256, 6, 128);
    CHECK(qz.scales[0 * 2 + 0] == 0.f);
    CHECK(qz.scales[1 * 2 + 0] == 1.f / 31.f);
    CHECK(qz.q[128 + 5] == -31);
    // Per-token mode (group = k): one scale over the whole row, stored [1][m].
    auto qt = quantize_acts_ref(z.data(), 2, 256, 8, 256);
    REQUIRE(qt.scales.size() == 2);
    CHECK(qt.scales[0] == 1.f / 127.f);
    CHECK(qt.scales[1] == 0.f);
}

TEST_CASE("weight quantization: fp16 scale clamped to [1e-5, 1e4], codes in [-31, 31]") {
    std::vector<float> w(2 * 128);
    for (int i = 0; i < 128; ++i) w[i] = float(i - 64) / 64.f;  // absmax 1 -> scale 1/31
    for (int i = 0; i < 128; ++i) w[128 + i] = 1e-9f * float(i); // tiny: scale clamps to 1e-5
    auto q = quantize_weights_ref(w.data(), 2, 128);
    CHECK(q.scales[0] == float_to_half(1.f / 31.f));
    CHECK(q.scales[1] == float_to_half(1e-5f));
    CHECK(q.q[0] == int(std::nearbyint(-1.f / half_to_float(q.scales[0]))));
    for (auto c : q.q) CHECK((c >= -31 && c <= 31));
    CHECK_THROWS(quantize_weights_ref(w.data(), 1, 100));
}

TEST_CASE("grouped GEMM reference: hand-computed values and the scaling order") {
    // m=1, n=2, k=256: acc per group by hand.
    std::vector<int8_t> a(256), w(512);
    for (int i = 0; i < 256; ++i) a[i] = int8_t(i < 128 ? 1 : -2);
    for (int i = 0; i < 512; ++i) w[i] = int8_t((i % 5) - 1); // -1, 0, 1, 2, 3 repeating
    auto acc = gemm_group_acc_ref(a.data(), w.data(), 1, 2, 256);
    auto sum = [&](int row, int g) {
        int s = 0;
        for (int i = 0; i < 128; ++i) s += a[g * 128 + i] * w[row * 256 + g * 128 + i];
        return s;
    };
    REQUIRE(acc.size() == 4);
    CHECK(acc[0] == sum(0, 0));
    CHECK(acc[1] == sum(0, 1));
    CHECK(acc[2] == sum(1, 0));
    CHECK(acc[3] == sum(1, 1));
    CHECK(acc[1] != 0);
    // Extremes: -128 * -32 over a whole group fits int32 with room (2^19).
    std::vector<int8_t> amax(128, -128), wmax(128, -32);
    CHECK(gemm_group_acc_ref(amax.data(), wmax.data(), 1, 1, 128)[0] == 128 * 128 * 32);
    const float sx[2] = {0.5f, 0.25f};
    const uint16_t sw[4] = {float_to_half(2.f), float_to_half(4.f), float_to_half(1.f), float_to_half(8.f)};
    auto out = gemm_scale_ref(acc, sx, sw, 1, 2, 256);
    CHECK(out[0] == float(acc[0]) * 1.f + float(acc[1]) * 1.f);
    CHECK(out[1] == float(acc[2]) * 0.5f + float(acc[3]) * 2.f);
}

TEST_CASE("shape checks name the values") {
    auto st = check_w6_shape("w6_imma", 3, 64, 4100);
    CHECK(st.code == qb::status_code::unsupported_shape);
    CHECK(st.reason.find("k=4100") != std::string::npos);
    CHECK(check_w6_shape("x", 0, 1, 128).code == qb::status_code::invalid_argument);
    CHECK(check_w6_shape("x", 1, 1, 128).ok());
}

TEST_CASE("flexq_btc schedule covers every plane pair exactly once with its coefficient") {
    auto check = [](auto sched, int abits) {
        std::vector<int> seen(abits * 6, 0);
        for (int o = 0; o < sched.count; ++o) {
            const auto &op = sched.ops[o];
            auto coef = [&](int i, int j) { return ((i == abits - 1) ? -1 : 1) * ((j == 5) ? -1 : 1) * (1 << (i + j)); };
            CHECK(coef(op.xi, op.wj) == op.coef);
            ++seen[op.xi * 6 + op.wj];
            if (op.xi2 >= 0) {
                CHECK(coef(op.xi2, op.wj2) == op.coef);
                ++seen[op.xi2 * 6 + op.wj2];
            }
            if (o > 0) CHECK(std::abs(sched.ops[o - 1].coef) <= std::abs(op.coef)); // sorted by level (the kernel's Horner order)
        }
        for (int v : seen) CHECK(v == 1);
        return sched.count;
    };
    CHECK(check(btc_schedule<6>{}, 6) == 21);
    MESSAGE("W6A8 needs " << check(btc_schedule<8>{}, 8) << " k256 multiplies for 48 plane pairs");
}

TEST_CASE("imma packing round-trips every code and scale, with an N residue") {
    std::mt19937 rng(5);
    for (int n : {16, 37}) {
        auto w = random_weights(n, 384, rng);
        auto p = pack_weights_imma(w);
        CHECK(p.data.size() == size_t(packed_weight_bytes(n, 384)));
        CHECK(p.scales.size() * 2 == size_t(packed_scale_bytes(n, 384)));
        auto back = unpack_weights_imma(p);
        CHECK(back.q == w.q);
        CHECK(back.scales == w.scales);
    }
    // 6.125 bits per weight including the scales.
    CHECK(double(packed_weight_bytes(4096, 4096) + packed_scale_bytes(4096, 4096)) * 8 / (4096.0 * 4096) == 6.125);
}

// One warp's m16n8k32 s8 work over the packed weights, group by group, against the int64
// reference; b_words(tok, g, kk, t, b) gives lane (tok, t)'s two B registers of k32 chunk kk.
template <class BWords>
int imma_emulation_mismatches(const packed_weights &p, const std::vector<int32_t> &ref, int m, int n, int k, BWords b_words) {
    const int groups = k / 128;
    int mismatches = 0;
    for (int nt = 0; nt < row_tiles(n); ++nt)
        for (int m0 = 0; m0 < m; m0 += 8)
            for (int g = 0; g < groups; ++g) {
                const uint32_t *tile = tile_words(p, nt, g);
                int32_t d[16][8] = {};
                for (int kk = 0; kk < 4; ++kk) {
                    uint32_t a[32][4], b[32][2];
                    for (int lane = 0; lane < 32; ++lane) {
                        imma_unpack(tile[tile_word_index(lane, 3 * kk)], tile[tile_word_index(lane, 3 * kk + 1)],
                                    tile[tile_word_index(lane, 3 * kk + 2)], a[lane]);
                        const int tok = m0 + lane / 4;
                        b[lane][0] = b[lane][1] = 0;
                        if (tok < m) b_words(tok, g, kk, lane % 4, b[lane]);
                    }
                    emulate_mma_s8(a, b, d);
                }
                for (int r = 0; r < 16; ++r)
                    for (int c = 0; c < 8; ++c) {
                        const int row = nt * 16 + r, tok = m0 + c;
                        if (row >= n || tok >= m) continue;
                        if (d[r][c] % 4 != 0 || (d[r][c] >> 2) != ref[(size_t(tok) * n + row) * groups + g]) ++mismatches;
                    }
            }
    return mismatches;
}

TEST_CASE("imma fragments: a warp emulation of mma.sync m16n8k32 reproduces the int64 reference per group") {
    std::mt19937 rng(11);
    for (auto [m, n, k] : {std::tuple{3, 37, 256}, std::tuple{8, 16, 512}, std::tuple{17, 40, 128}}) {
        auto w = random_weights(n, k, rng);
        auto qa = random_codes(size_t(m) * k, -128, 127, rng);
        auto p = pack_weights_imma(w);
        auto ref = gemm_group_acc_ref(qa.data(), w.q.data(), m, n, k);
        // The kernel's B fragment: 32 contiguous bytes act[token][32t ..], words 2kk, 2kk + 1.
        const int mismatches = imma_emulation_mismatches(p, ref, m, n, k, [&](int tok, int g, int kk, int t, uint32_t(&b)[2]) {
            uint32_t words[8];
            std::memcpy(words, &qa[size_t(tok) * k + g * 128 + 32 * t], 32);
            b[0] = words[2 * kk];
            b[1] = words[2 * kk + 1];
        });
        CHECK_MESSAGE(mismatches == 0, "imma emulation m=" << m << " n=" << n << " k=" << k);
    }
}

TEST_CASE("wgmma order: the activation permutation puts logical k where each k32 step reads it") {
    // wgmma's register A fragment is the m16n8k32 one per warp, and it reads B in hardware k order
    // from shared memory (k32 step kk = bytes 32kk .. 32kk + 31 of a token's group). The packed
    // weight byte of (lane t, chunk kk, register reg, byte e) is logical k = imma_k_of(...), so that
    // activation must sit at byte 32kk + 16 (reg / 2) + 4t + e, before the 128-byte swizzle moves
    // 16-byte chunk c of token m to c ^ (m % 8).
    for (int m = 0; m < 8; ++m) {
        std::vector<int> seen(128, 0);
        for (int k = 0; k < 128; ++k) ++seen[wgmma_act_pos(k, m)];
        CHECK(std::count(seen.begin(), seen.end(), 1) == 128);
        for (int t = 0; t < 4; ++t)
            for (int kk = 0; kk < 4; ++kk)
                for (int reg = 0; reg < 4; ++reg)
                    for (int e = 0; e < 4; ++e)
                        CHECK(wgmma_act_pos(imma_k_of(t, kk, reg, e), m) == ((2 * kk + ((reg >> 1) & 1)) ^ m) * 16 + 4 * t + e);
    }
    // And an emulation of one warp's slice of the wgmma, fed from the reordered activations in
    // hardware order, reproduces the int64 reference.
    std::mt19937 rng(13);
    const int m = 9, n = 40, k = 384;
    auto w = random_weights(n, k, rng);
    auto qa = random_codes(size_t(m) * k, -128, 127, rng);
    const auto qo = order_acts_wgmma_ref(qa.data(), m, k);
    auto p = pack_weights_imma(w);
    auto ref = gemm_group_acc_ref(qa.data(), w.q.data(), m, n, k);
    const int mismatches = imma_emulation_mismatches(p, ref, m, n, k, [&](int tok, int g, int kk, int t, uint32_t(&b)[2]) {
        // What the hardware reads through the swizzle: chunk c of the row at c ^ (tok % 8).
        const int8_t *row = &qo[size_t(tok) * k + g * 128];
        std::memcpy(&b[0], row + 16 * ((2 * kk) ^ (tok & 7)) + 4 * t, 4);
        std::memcpy(&b[1], row + 16 * ((2 * kk + 1) ^ (tok & 7)) + 4 * t, 4);
    });
    CHECK(mismatches == 0);
}

TEST_CASE("btc fragments: a warp emulation of m16n8k256 and.popc with the pair schedule reproduces the reference") {
    std::mt19937 rng(13);
    for (int abits : {6, 8}) {
        const int m = 9, n = 21, k = 256, groups = 2;
        auto w = random_weights(n, k, rng);
        const int lo = abits == 6 ? -32 : -128, hi = abits == 6 ? 31 : 127;
        auto qa = random_codes(size_t(m) * k, lo, hi, rng);
        auto p = pack_weights_btc(w);
        auto planes = pack_act_planes_ref(qa.data(), m, k, abits);
        auto ref = gemm_group_acc_ref(qa.data(), w.q.data(), m, n, k);
        btc_schedule<8> s8{};
        btc_schedule<6> s6{};
        const int count = abits == 6 ? s6.count : s8.count;
        int mismatches = 0;
        for (int nt = 0; nt < row_tiles(n); ++nt)
            for (int m0 = 0; m0 < m; m0 += 8)
                for (int g = 0; g < groups; ++g) {
                    const uint32_t *tile = tile_words(p, nt, g);
                    int64_t acc[16][8] = {};
                    for (int o = 0; o < count; ++o) {
                        const btc_op op = abits == 6 ? s6.ops[o] : s8.ops[o];
                        const int j2 = op.wj2 >= 0 ? op.wj2 : op.wj;
                        uint32_t a[32][4], b[32][2];
                        for (int lane = 0; lane < 32; ++lane) {
                            a[lane][0] = tile[tile_word_index(lane, 2 * op.wj)];
                            a[lane][1] = tile[tile_word_index(lane, 2 * op.wj + 1)];
                            a[lane][2] = tile[tile_word_index(lane, 2 * j2)];
                            a[lane][3] = tile[tile_word_index(lane, 2 * j2 + 1)];
                            const int tok = m0 + lane / 4, t = lane % 4;
                            const uint32_t *x = tok < m ? &planes[((size_t(tok) * groups + g) * 4 + t) * abits] : nullptr;
                            b[lane][0] = x ? x[op.xi] : 0;
                            b[lane][1] = x && op.xi2 >= 0 ? x[op.xi2] : 0;
                        }
                        int32_t d[16][8] = {};
                        emulate_bmma(a, b, d);
                        for (int r = 0; r < 16; ++r)
                            for (int c = 0; c < 8; ++c) acc[r][c] += int64_t(op.coef) * d[r][c];
                    }
                    for (int r = 0; r < 16; ++r)
                        for (int c = 0; c < 8; ++c) {
                            const int row = nt * 16 + r, tok = m0 + c;
                            if (row < n && tok < m && acc[r][c] != ref[(size_t(tok) * n + row) * groups + g]) ++mismatches;
                        }
                }
        CHECK_MESSAGE(mismatches == 0, "btc emulation a_bits=" << abits);
    }
}

TEST_CASE("activation planes: word (m, g, t, i) bit b is bit i of code 32t + b") {
    std::mt19937 rng(3);
    auto q = random_codes(2 * 256, -128, 127, rng);
    auto planes = pack_act_planes_ref(q.data(), 2, 256, 8);
    REQUIRE(planes.size() == 2 * 2 * 4 * 8);
    for (int r = 0; r < 2; ++r)
        for (int kk = 0; kk < 256; ++kk) {
            const int g = kk / 128, t = (kk % 128) / 32, b = kk % 32;
            int v = 0;
            for (int i = 0; i < 8; ++i) v |= int((planes[((size_t(r) * 2 + g) * 4 + t) * 8 + i] >> b) & 1u) << i;
            CHECK(int8_t(v) == q[size_t(r) * 256 + kk]);
        }
}

} // TEST_SUITE
