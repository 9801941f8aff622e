// gpu suite: the fused decode attention (kernels/decode_attn) against its CPU reference.
//   - the caches after the step equal the reference bit for bit: row pos holds the rotated key and
//     the value, every other row is untouched (positions past pos are NaN and stay so, which also
//     shows they are never read: one NaN in a softmax would make the output NaN);
//   - outputs within the reference's fp32 bound plus the fp16 rounding (half an ulp);
//   - both RoPE pairings, head_dim 64 and 128, MHA and GQA groups of 2, 3 and 8, batch 1 and 3,
//     positions at chunk edges (0, 63, 64, 65) and the cache's last; one and several splits, and
//     blocks that walk up to 11 chunks (the online softmax); the combine over 17 and 32 splits of
//     eight heads (LLaMA-2-70B), 8 splits of four heads at D = 128, and 129 and 256 splits of one
//     head (more than a warp's lanes, and the most a group gets); split counts as on 132 SMs;
//   - the same launch twice gives the same bits (the split counters are reset), and a sequence of
//     positions through one scratch buffer, as a decode loop runs;
//   - a position outside the cache: NaN out, caches untouched; shapes the kernel cannot do: reasons.
#include "decode_attn/decode_attn.h"
#include "decode_attn/decode_attn_ref.h"
#include "kernels/device_buffer.h"
#include "kernels/random_halves.h"
#include "quant_pack/w6_ref.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

using namespace qb::attn;
using qb::w6::float_to_half;
using qb::w6::half_to_float;

namespace {

template <class T>
using dbuf = qb::test::device_buffer<T>;
using qb::test::random_halves;

struct setup {
    int batch, heads, kv_heads, head_dim, capacity;
    rope_pairs rope;
};

std::string name(const setup &s, int pos) {
    return "B=" + std::to_string(s.batch) + " H=" + std::to_string(s.heads) + " Hkv=" + std::to_string(s.kv_heads) + " D=" +
           std::to_string(s.head_dim) + " cap=" + std::to_string(s.capacity) + (s.rope == rope_pairs::interleaved ? " interleaved" : " half_split") +
           " pos=" + std::to_string(pos);
}

// A problem at `pos`: rows < pos random, rows >= pos NaN (row pos is the kernel's to write).
decode_attn_problem make_problem(const setup &s, int pos, uint32_t seed) {
    std::mt19937 rng(seed);
    decode_attn_problem p;
    p.batch = s.batch, p.heads = s.heads, p.kv_heads = s.kv_heads, p.head_dim = s.head_dim, p.capacity = s.capacity, p.pos = pos;
    p.rope = s.rope;
    const size_t d = s.head_dim;
    p.q = random_halves(s.batch * s.heads * d, 3.f, rng);
    p.k = random_halves(s.batch * s.kv_heads * d, 3.f, rng);
    p.v = random_halves(s.batch * s.kv_heads * d, 4.f, rng);
    p.cache_k = random_halves(size_t(s.batch) * s.kv_heads * s.capacity * d, 3.f, rng);
    p.cache_v = random_halves(size_t(s.batch) * s.kv_heads * s.capacity * d, 4.f, rng);
    for (size_t r = 0; r < size_t(s.batch) * s.kv_heads * s.capacity; ++r)
        if (int(r % s.capacity) >= pos)
            for (size_t e = 0; e < d; ++e) p.cache_k[r * d + e] = p.cache_v[r * d + e] = 0x7e00;
    // Tables as the model makes them: angles pos * theta^(-2i/D), in double, stored in fp32.
    const int rows = s.capacity;
    p.rope_cos.resize(size_t(rows) * d / 2);
    p.rope_sin.resize(size_t(rows) * d / 2);
    for (int t = 0; t < rows; ++t)
        for (size_t i = 0; i < d / 2; ++i) {
            const double a = t * std::pow(10000.0, -2.0 * double(i) / double(d));
            p.rope_cos[t * d / 2 + i] = float(std::cos(a));
            p.rope_sin[t * d / 2 + i] = float(std::sin(a));
        }
    return p;
}

struct device_problem {
    dbuf<uint16_t> q, k, v, cache_k, cache_v, out;
    dbuf<float> cos, sin;
    dbuf<int64_t> pos;
    dbuf<unsigned char> scratch;
    decode_attn_args args;
    device_problem(const decode_attn_problem &p)
        : q(p.q), k(p.k), v(p.v), cache_k(p.cache_k), cache_v(p.cache_v), out(size_t(p.batch) * p.heads * p.head_dim), cos(p.rope_cos),
          sin(p.rope_sin), pos(std::vector<int64_t>{p.pos}),
          scratch(decode_attn_scratch_bytes(p.batch, p.heads, p.kv_heads, p.head_dim, p.capacity)) {
        REQUIRE(cudaMemset(scratch.ptr, 0, scratch.count) == cudaSuccess);
        REQUIRE(cudaMemset(out.ptr, 0xFF, out.count * 2) == cudaSuccess); // poison
        args.q = reinterpret_cast<const __half *>(q.ptr);
        args.k = reinterpret_cast<const __half *>(k.ptr);
        args.v = reinterpret_cast<const __half *>(v.ptr);
        args.q_stride = int64_t(p.heads) * p.head_dim;
        args.k_stride = args.v_stride = int64_t(p.kv_heads) * p.head_dim;
        args.cache_k = reinterpret_cast<__half *>(cache_k.ptr);
        args.cache_v = reinterpret_cast<__half *>(cache_v.ptr);
        args.rope_cos = cos.ptr;
        args.rope_sin = sin.ptr;
        args.rope_rows = int(p.rope_cos.size() / (p.head_dim / 2));
        args.rope = p.rope;
        args.pos = pos.ptr;
        args.batch = p.batch, args.heads = p.heads, args.kv_heads = p.kv_heads, args.head_dim = p.head_dim, args.capacity = p.capacity;
        args.out = reinterpret_cast<__half *>(out.ptr);
        args.scratch = scratch.ptr;
    }
    void launch() {
        const auto st = decode_attention(args, nullptr);
        REQUIRE_MESSAGE(st.ok(), st.reason);
        REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    }
};

// Counts elements of `out` outside the reference's bound (one line per the first few).
int check_out(const std::vector<uint16_t> &out, const decode_attn_expected &e, const std::string &what) {
    int bad = 0;
    for (size_t i = 0; i < out.size(); ++i) {
        const double got = half_to_float(out[i]), ref = e.out[i];
        // Half an fp16 ulp of the value (the final rounding), at the binade of ref plus the fp32 bound.
        const double mag = std::max(std::fabs(ref) + e.fp32_bound[i], std::ldexp(1.0, -14));
        const double ulp = std::ldexp(1.0, int(std::floor(std::log2(mag))) - 10);
        const double tol = 0.5 * ulp + e.fp32_bound[i];
        if (!(std::fabs(got - ref) <= tol)) {
            if (++bad <= 5) MESSAGE(what << " out[" << i << "]: " << got << " vs " << ref << " (|diff| " << std::fabs(got - ref) << " > " << tol << ")");
        }
    }
    return bad;
}

int count_diff(const std::vector<uint16_t> &a, const std::vector<uint16_t> &b) {
    int n = 0;
    for (size_t i = 0; i < a.size(); ++i) n += a[i] != b[i];
    return n;
}

} // namespace

TEST_SUITE("gpu") {

TEST_CASE("decode_attention: caches bit-exact, outputs within the fp32 bound + half an fp16 ulp") {
    int dev_count = 0;
    if (cudaGetDeviceCount(&dev_count) != cudaSuccess || dev_count == 0) {
        MESSAGE("no CUDA device: skipped");
        return;
    }
    const setup setups[] = {
        {1, 32, 32, 128, 256, rope_pairs::half_split},  // LLaMA-2-7B
        {1, 32, 32, 128, 200, rope_pairs::interleaved}, // llama2.c / GGUF order, capacity not a chunk multiple
        {3, 8, 2, 64, 130, rope_pairs::half_split},     // GQA 4, batch 3, head_dim 64
        {1, 9, 3, 64, 300, rope_pairs::half_split},     // SmolLM2-135M: groups of 3
        {2, 16, 2, 128, 520, rope_pairs::interleaved},  // groups of 8 (the kernel's most)
        {4, 32, 32, 128, 2048, rope_pairs::half_split}, // 128 KV heads in all: few splits, up to 11 chunks a block
        {1, 32, 8, 128, 1024, rope_pairs::interleaved}, // LLaMA-3-8B / Mistral-7B heads (groups of 4, D = 128): 8 splits at the end
        {1, 64, 8, 128, 4096, rope_pairs::half_split},  // LLaMA-2-70B: 17 and 32 splits combined (on 132 SMs)
        {1, 4, 1, 64, 32768, rope_pairs::half_split},   // one KV head: 256 splits of 128 rows at the end, 129 at the middle
    };
    for (const auto &s : setups)
        for (int pos : {0, 1, 63, 64, 65, s.capacity / 2 + 7, s.capacity - 1}) {
            const auto p = make_problem(s, pos, uint32_t(1000 + pos + s.heads * 7 + s.capacity));
            const auto e = decode_attention_ref(p);
            device_problem dp(p);
            dp.launch();
            const auto out = dp.out.download();
            INFO(name(s, pos));
            CHECK(count_diff(dp.cache_k.download(), e.cache_k) == 0);
            CHECK(count_diff(dp.cache_v.download(), e.cache_v) == 0);
            const int bad = check_out(out, e, name(s, pos));
            CHECK(bad == 0);
            // Again with the same inputs (the key row at pos is rewritten with the same bits): the
            // counters were reset, the combine order is fixed.
            dp.launch();
            CHECK(count_diff(dp.out.download(), out) == 0);
        }
}

TEST_CASE("decode_attention: a decode loop through one scratch buffer") {
    int dev_count = 0;
    if (cudaGetDeviceCount(&dev_count) != cudaSuccess || dev_count == 0) return;
    const setup s{1, 8, 8, 128, 192, rope_pairs::half_split};
    auto p = make_problem(s, 0, 77);
    device_problem dp(p);
    std::mt19937 rng(5);
    for (int pos = 0; pos < 140; ++pos) {
        p.pos = pos;
        p.q = random_halves(p.q.size(), 3.f, rng);
        p.k = random_halves(p.k.size(), 3.f, rng);
        p.v = random_halves(p.v.size(), 4.f, rng);
        dp.q.upload(p.q), dp.k.upload(p.k), dp.v.upload(p.v), dp.pos.upload({int64_t(pos)});
        const auto e = decode_attention_ref(p);
        dp.launch();
        INFO(name(s, pos));
        const auto ck = dp.cache_k.download(), cv = dp.cache_v.download();
        REQUIRE(count_diff(ck, e.cache_k) == 0);
        REQUIRE(count_diff(cv, e.cache_v) == 0);
        REQUIRE(check_out(dp.out.download(), e, name(s, pos)) == 0);
        p.cache_k = ck, p.cache_v = cv;
    }
}

TEST_CASE("decode_attention: a position outside the cache writes NaN and leaves the caches alone") {
    int dev_count = 0;
    if (cudaGetDeviceCount(&dev_count) != cudaSuccess || dev_count == 0) return;
    const setup s{1, 4, 4, 64, 128, rope_pairs::half_split};
    const auto p = make_problem(s, 5, 9);
    for (int64_t bad_pos : {int64_t(-1), int64_t(128), int64_t(1) << 40}) {
        device_problem dp(p);
        dp.pos.upload({bad_pos});
        dp.launch();
        INFO("pos=" << bad_pos);
        for (uint16_t h : dp.out.download()) REQUIRE(std::isnan(half_to_float(h)));
        CHECK(count_diff(dp.cache_k.download(), p.cache_k) == 0);
        CHECK(count_diff(dp.cache_v.download(), p.cache_v) == 0);
    }
}

} // TEST_SUITE gpu

// Host-side checks: no kernel runs, so they need no device.
TEST_CASE("decode_attention: shapes it cannot do are refused with the reason") {
    CHECK(decode_attn_supports(32, 32, 128).ok());
    CHECK(decode_attn_supports(64, 8, 128).ok());
    const auto d96 = decode_attn_supports(32, 32, 96);
    CHECK(d96.code == qb::status_code::unsupported_shape);
    CHECK(d96.reason.find("head_dim must be 64 or 128 (head_dim=96)") != std::string::npos);
    const auto g16 = decode_attn_supports(32, 2, 128);
    CHECK(g16.reason.find("at most 8 query heads per KV head") != std::string::npos);
    CHECK(decode_attn_supports(30, 4, 128).reason.find("multiple of n_kv_heads") != std::string::npos);
    decode_attn_args a;
    a.heads = a.kv_heads = 4, a.head_dim = 64, a.batch = 1, a.capacity = 8, a.rope_rows = 8;
    const auto null_args = decode_attention(a, nullptr);
    CHECK(null_args.code == qb::status_code::invalid_argument);
    CHECK(null_args.reason.find("null pointer") != std::string::npos);
}
