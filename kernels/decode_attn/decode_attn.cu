// Fused decode attention (see decode_attn.h for what and why). Blocks of 8 warps; in each 64-row
// chunk warp w handles rows w, w + 8, ..., each lane D / 32 elements of a row, so a row is one
// coalesced read per warp.
#include "common/cuda_check.h"
#include "common/device_info.h"
#include "common/pdl_launch.h"
#include "common/sm90_async.cuh"
#include "decode_attn/decode_attn.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>

namespace qb::attn {
namespace {

constexpr int block_threads = 256, block_warps = block_threads / 32;
constexpr int rows_per_warp = decode_attn_chunk / block_warps;
static_assert(decode_attn_chunk == 64, "the softmax gives each lane two positions of the chunk");
static_assert(decode_attn_max_group <= block_warps, "one warp rotates each query head of the group");
static_assert(rows_per_warp == 8, "the scores' transposed reduction sums 8 rows per warp");

__host__ __device__ constexpr size_t align256(size_t n) { return (n + 255) / 256 * 256; }
// The combine keeps every split's max and sum of a group in the block's acc_s (free by then):
// 2 x max_splits x G floats in block_warps x G x D.
constexpr int max_splits = 256;
static_assert(2 * max_splits <= block_warps * 64, "the split weights and sums fit in acc_s at D = 64");

// Blocks per (sequence, KV head): enough for about two blocks per SM over the whole grid, at most one
// per 64-row chunk of the cache, at most max_splits (binds only for one group on > 128 SMs). Fixed by
// the shapes and the device, not by pos (a captured graph replays the same grid at every position);
// each block takes its share of 0..pos.
int splits_of(int batch, int kv_heads, int capacity) {
    const int sms = qb::cuda::current_device_sm_count(); // queried once per process, as the GEMM launchers do
    const long long groups = (long long)batch * kv_heads;
    const long long want = std::min<long long>((2LL * sms + groups - 1) / groups, max_splits);
    return int(std::max(1LL, std::min<long long>(want, (capacity + decode_attn_chunk - 1) / decode_attn_chunk)));
}

// E fp16 values of one lane, loaded as one word so that they stay in flight as raw bits.
template <int E>
struct lane_word;
template <>
struct lane_word<2> {
    using type = unsigned int;
};
template <>
struct lane_word<4> {
    using type = uint2;
};

template <int E>
__device__ __forceinline__ typename lane_word<E>::type load_lane(const __half *p) {
    return *reinterpret_cast<const typename lane_word<E>::type *>(p);
}
// Through L2 only: these rows are read once, and the block reads back the row it just wrote.
template <int E>
__device__ __forceinline__ typename lane_word<E>::type load_lane_cg(const __half *p) {
    return __ldcg(reinterpret_cast<const typename lane_word<E>::type *>(p));
}
template <int E>
__device__ __forceinline__ void to_float(const typename lane_word<E>::type &w, float (&x)[E]) {
    const __half2 *h = reinterpret_cast<const __half2 *>(&w);
#pragma unroll
    for (int i = 0; i < E / 2; ++i) {
        const float2 f = __half22float2(h[i]);
        x[2 * i] = f.x;
        x[2 * i + 1] = f.y;
    }
}
template <int E>
__device__ __forceinline__ void store_lane(__half *p, const __half (&y)[E]) {
    typename lane_word<E>::type w;
    __half *h = reinterpret_cast<__half *>(&w);
#pragma unroll
    for (int i = 0; i < E; ++i) h[i] = y[i];
    *reinterpret_cast<typename lane_word<E>::type *>(p) = w;
}

// This lane's E elements (E * lane ...) of one head, rotated: x * cos + partner * (-sin or +sin),
// each product and the sum rounded in fp32 (no fma: the model's ATen formula computes them in
// separate kernels), then rounded to fp16. Half-split partners sit 16 lanes away.
template <int D, int E>
__device__ __forceinline__ void rope_lane(const float (&x)[E], const float *cos_row, const float *sin_row, rope_pairs pairs, int lane,
                                          __half (&y)[E]) {
    const int e0 = E * lane;
    if (pairs == rope_pairs::interleaved) {
#pragma unroll
        for (int i = 0; i < E; i += 2) {
            const int a = (e0 + i) / 2;
            const float c = cos_row[a], s = sin_row[a];
            y[i] = __float2half_rn(__fadd_rn(__fmul_rn(x[i], c), __fmul_rn(x[i + 1], -s)));
            y[i + 1] = __float2half_rn(__fadd_rn(__fmul_rn(x[i + 1], c), __fmul_rn(x[i], s)));
        }
    } else {
        const bool first_half = e0 < D / 2;
#pragma unroll
        for (int i = 0; i < E; ++i) {
            const float partner = __shfl_xor_sync(0xffffffffu, x[i], 16);
            const int a = (e0 + i) % (D / 2);
            const float c = cos_row[a], s = sin_row[a];
            y[i] = __float2half_rn(__fadd_rn(__fmul_rn(x[i], c), __fmul_rn(partner, first_half ? -s : s)));
        }
    }
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
}

// The warp sums of R = 8 values at once, by the same butterfly as warp_sum (xor 16, 8, 4, 2, 1: the
// same pairs added in the same tree, so each sum has warp_sum's bits), but transposed: at each of the
// first three levels a lane keeps the half of its values that its partner does not, so 8 sums cost
// 4 + 2 + 1 + 1 + 1 = 9 shuffles instead of 40, and in one dependency chain instead of eight.
// Returns the sum of v[row_of_lane(lane)]; every lane whose (lane & 3) == 0 holds a distinct row's.
__device__ __forceinline__ int transposed_row(int lane) { return ((lane >> 4) & 1) * 4 + ((lane >> 3) & 1) * 2 + ((lane >> 2) & 1); }
__device__ __forceinline__ float warp_sums_transposed(const float (&v)[8], int lane) {
    float h4[4], h2[2];
    const bool hi16 = lane & 16, hi8 = lane & 8, hi4 = lane & 4;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const float send = hi16 ? v[i] : v[i + 4], keep = hi16 ? v[i + 4] : v[i];
        h4[i] = keep + __shfl_xor_sync(0xffffffffu, send, 16);
    }
#pragma unroll
    for (int i = 0; i < 2; ++i) {
        const float send = hi8 ? h4[i] : h4[i + 2], keep = hi8 ? h4[i + 2] : h4[i];
        h2[i] = keep + __shfl_xor_sync(0xffffffffu, send, 8);
    }
    const float send = hi4 ? h2[0] : h2[1], keep = hi4 ? h2[1] : h2[0];
    float s = keep + __shfl_xor_sync(0xffffffffu, send, 4);
    s += __shfl_xor_sync(0xffffffffu, s, 2);
    s += __shfl_xor_sync(0xffffffffu, s, 1);
    return s;
}
__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, off));
    return v;
}

// This lane's E values of a cached row as fp32: the row at pos from shared memory (the kernel's own
// write, which the cache read in flight predates), any other from the loaded word.
template <int E>
__device__ __forceinline__ void row_values(const typename lane_word<E>::type &w, bool is_pos, const float *new_row_s, int lane, float (&x)[E]) {
    if (is_pos) {
#pragma unroll
        for (int e = 0; e < E; ++e) x[e] = new_row_s[E * lane + e];
    } else {
        to_float<E>(w, x);
    }
}

// Positions per block: an equal share of 0..pos for each of the `splits` blocks of a group, in whole
// 64-row chunks, and at least min_block_rows (below that a second block costs more, in the combine's
// round trips, than the rows it takes).
constexpr int min_block_rows = 2 * decode_attn_chunk;
__device__ __forceinline__ int rows_per_block(int pos, int splits) {
    const int share = (pos + splits) / splits; // ceil((pos + 1) / splits)
    const int whole = (share + decode_attn_chunk - 1) / decode_attn_chunk * decode_attn_chunk;
    return max(whole, min_block_rows);
}

// The combine of a group's `active` partials ([active][group][D + 2]: output, max, sum) into out, by
// the last block, for groups of many splits or of more outputs than threads: 1 + ceil(active / 8)
// dependent L2 round trips. Every split's max and sum at once into scratch_s (the block's acc_s,
// whose last reads were before the caller's barriers), then each thread's outputs together, 8 splits'
// loads in flight per output. The per-output form in the kernel takes 2 x ceil(active / 8) round trips
// per output and a thread's outputs one after another: 32 at LLaMA-2-70B's 32 splits (8 heads x 128
// outputs, 4 a thread), where this form was 6-12% faster (H100, session 32); with one output a thread
// and at most 8 splits (LLaMA-2-7B) both take 2 round trips and this one measured 1 us slower, so
// that case keeps the per-output form. Both are the same operations in the same split order, so the
// same bits. Not inlined: inlined, it changed the chunk loop's register allocation (ptxas, D = 128:
// spills at G = 4 48 -> 116 bytes, G = 2 0 -> 36) and 70B ran up to 14% slower than with the call.
template <int D, int G>
__device__ __noinline__ void combine_splits(const float *group_partials, int group, int active, float *scratch_s, __half *out) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    auto partial = [&](int s, int r) { return group_partials + (size_t(s) * group + r) * (D + 2); };
    float *weight_s = scratch_s, *split_sum_s = weight_s + group * active; // [group][active] each
    for (int i = threadIdx.x; i < group * active; i += block_threads) {
        const int r = i / active, s = i - r * active;
        weight_s[i] = __ldcg(partial(s, r) + D); // the split's max, until it becomes its weight below
        split_sum_s[i] = __ldcg(partial(s, r) + D + 1);
    }
    __syncthreads();
    if (warp < group) { // head `warp`: its max over the splits (fmaxf is exact in any order), then weights
        float m = -INFINITY;
        for (int s = lane; s < active; s += 32) m = fmaxf(m, weight_s[warp * active + s]);
        m = warp_max(m);
        for (int s = lane; s < active; s += 32) weight_s[warp * active + s] = expf(weight_s[warp * active + s] - m);
    }
    __syncthreads();
    constexpr int per_thread = (G * D + block_threads - 1) / block_threads; // outputs of a thread at most
    float o[per_thread] = {};
    for (int s0 = 0; s0 < active; s0 += 8) {
        float pv[per_thread][8];
#pragma unroll
        for (int j = 0; j < per_thread; ++j) {
            const int idx = threadIdx.x + j * block_threads, r = idx / D, d = idx - r * D;
#pragma unroll
            for (int u = 0; u < 8; ++u) pv[j][u] = idx < group * D && s0 + u < active ? __ldcg(partial(s0 + u, r) + d) : 0.f;
        }
#pragma unroll
        for (int j = 0; j < per_thread; ++j) {
            const int r = (threadIdx.x + j * block_threads) / D;
#pragma unroll
            for (int u = 0; u < 8; ++u)
                if (s0 + u < active && r < group) o[j] = fmaf(weight_s[r * active + s0 + u], pv[j][u], o[j]);
        }
    }
#pragma unroll
    for (int j = 0; j < per_thread; ++j) {
        const int idx = threadIdx.x + j * block_threads, r = idx / D;
        if (idx >= group * D) break;
        float l = 0.f;
        for (int s = 0; s < active; ++s) l = fmaf(weight_s[r * active + s], split_sum_s[r * active + s], l);
        out[idx] = __float2half_rn(__fdiv_rn(o[j], l));
    }
}

// G: the most query heads per KV head this instantiation holds (1, 2, 4 or 8; group <= G), so that
// MHA models keep one head's accumulators in registers, not eight.
template <int D, int G>
__global__ void __launch_bounds__(block_threads, 2) decode_attn_kernel(const decode_attn_args a, int splits) {
    constexpr int E = D / 32;
    using word = typename lane_word<E>::type;
    const int split = blockIdx.x, bg = blockIdx.y;
    const int b = bg / a.kv_heads, g = bg - b * a.kv_heads;
    const int group = a.heads / a.kv_heads;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    __half *out = a.out + (size_t(b) * a.heads + size_t(g) * group) * D; // this group's query heads

    qb::cuda::sm90::pdl_enter(); // pos, q, k and v come from the kernels ahead
    const int64_t p = *a.pos;
    if (p < 0 || p >= a.capacity || p >= a.rope_rows) {
        if (split == 0)
            for (int i = threadIdx.x; i < group * D; i += block_threads) out[i] = __ushort_as_half(0x7e00); // NaN
        return;
    }
    const int pos = int(p), per = rows_per_block(pos, splits), begin = split * per;
    if (begin > pos) return;
    const int end = min(begin + per, pos + 1);         // this block's positions [begin, end)
    const int active = (pos + per) / per;              // blocks of this group that run
    const int chunks = (end - begin + decode_attn_chunk - 1) / decode_attn_chunk;
    const size_t row0 = (size_t(b) * a.kv_heads + g) * a.capacity; // cache row of position 0
    const __half *keys = a.cache_k + row0 * D, *values = a.cache_v + row0 * D;

    __shared__ float q_s[G][D];
    __shared__ float new_k_s[D], new_v_s[D];                        // the row at pos, as the cache gets it
    __shared__ float p_s[G][decode_attn_chunk]; // a chunk's scores, then exponentials
    __shared__ float acc_s[block_warps][G][D];
    __shared__ float max_s[G], sum_s[G], rescale_s[G];
    __shared__ int last_s;

    // Rows of chunk c for this warp (t = warp + 8 i), all loads in flight at once. The row at pos
    // still holds the previous contents of the cache: its values come from new_k_s / new_v_s.
    word kw[rows_per_warp], vw[rows_per_warp], kn[rows_per_warp], vn[rows_per_warp];
    auto load_chunk = [&](int c, word(&kr)[rows_per_warp], word(&vr)[rows_per_warp]) {
        const int c0 = begin + c * decode_attn_chunk, n = min(decode_attn_chunk, end - c0);
#pragma unroll
        for (int i = 0; i < rows_per_warp; ++i) {
            const int t = warp + block_warps * i;
            if (t < n) {
                kr[i] = load_lane_cg<E>(keys + size_t(c0 + t) * D + E * lane);
                vr[i] = load_lane_cg<E>(values + size_t(c0 + t) * D + E * lane);
            }
        }
    };
    // The first two chunks go out before the query's loads and rotation, so that the second's round
    // trip does not wait behind the query's. Not at G = 8: holding a second chunk across the loop
    // beside eight heads' accumulators spills (132 bytes against 32), which cost 70B 3-5% on the
    // H100 (session 28); there chunk c + 1 goes out at the top of iteration c.
    constexpr bool early = G <= 4;
    load_chunk(0, kw, vw);
    if (early && chunks > 1) load_chunk(1, kn, vn);

    const float *cos_row = a.rope_cos + size_t(pos) * (D / 2), *sin_row = a.rope_sin + size_t(pos) * (D / 2);
    if (warp < group) { // query head g * group + warp, rotated and rounded as the model stores it
        float x[E];
        __half y[E];
        to_float<E>(load_lane<E>(a.q + size_t(b) * a.q_stride + size_t(g * group + warp) * D + E * lane), x);
        rope_lane<D, E>(x, cos_row, sin_row, a.rope, lane, y);
#pragma unroll
        for (int i = 0; i < E; ++i) q_s[warp][E * lane + i] = __half2float(y[i]);
    }
    if (end == pos + 1) { // this block holds pos: the new key (rotated) and value, to the cache and to new_*_s
        if (warp == block_warps - 1) {
            float x[E];
            __half y[E];
            to_float<E>(load_lane<E>(a.k + size_t(b) * a.k_stride + size_t(g) * D + E * lane), x);
            rope_lane<D, E>(x, cos_row, sin_row, a.rope, lane, y);
            store_lane<E>(a.cache_k + (row0 + pos) * D + E * lane, y);
#pragma unroll
            for (int i = 0; i < E; ++i) new_k_s[E * lane + i] = __half2float(y[i]);
        } else if (warp == block_warps - 2) {
            const word w = load_lane<E>(a.v + size_t(b) * a.v_stride + size_t(g) * D + E * lane);
            *reinterpret_cast<word *>(a.cache_v + (row0 + pos) * D + E * lane) = w;
            float x[E];
            to_float<E>(w, x);
#pragma unroll
            for (int i = 0; i < E; ++i) new_v_s[E * lane + i] = x[i];
        }
    }
    if (warp < group && lane == 0) max_s[warp] = -INFINITY, sum_s[warp] = 0.f;

    const float scale = 1.f / sqrtf(float(D));
    float acc[G][E] = {};
    for (int c = 0; c < chunks; ++c) {
        const int c0 = begin + c * decode_attn_chunk, n = min(decode_attn_chunk, end - c0);
        // Chunk c + 1 is in flight in kn / vn while this one is computed.
        if (!early && c + 1 < chunks) load_chunk(c + 1, kn, vn);
        __syncthreads(); // q_s, new_*_s and the running max / sum ready; p_s free again

        // Scores: every row's partial dot products first, then one transposed reduction per head.
        // Rows at or past n hold stale words; their sums are computed and never stored (a lane's
        // sum mixes nothing of other rows).
        const int my_row = transposed_row(lane), my_t = warp + block_warps * my_row;
#pragma unroll
        for (int r = 0; r < G; ++r) {
            if (r >= group) break;
            float qr[E], dot[rows_per_warp];
#pragma unroll
            for (int e = 0; e < E; ++e) qr[e] = q_s[r][E * lane + e];
#pragma unroll
            for (int i = 0; i < rows_per_warp; ++i) {
                float kf[E]; // converted again per head: 8 rows of fp32 keys would not fit beside the loads in flight
                row_values<E>(kw[i], c0 + warp + block_warps * i == pos, new_k_s, lane, kf);
                dot[i] = 0.f;
#pragma unroll
                for (int e = 0; e < E; ++e) dot[i] = fmaf(qr[e], kf[e], dot[i]);
            }
            const float sum = warp_sums_transposed(dot, lane);
            if ((lane & 3) == 0 && my_t < n) p_s[r][my_t] = sum * scale;
        }
        __syncthreads();

        if (warp < group) { // online softmax of head `warp`: lane holds positions lane, lane + 32 of the chunk
            const float s0 = lane < n ? p_s[warp][lane] : -INFINITY, s1 = lane + 32 < n ? p_s[warp][lane + 32] : -INFINITY;
            const float m_old = max_s[warp], m = fmaxf(m_old, warp_max(fmaxf(s0, s1)));
            const float e0 = lane < n ? expf(s0 - m) : 0.f, e1 = lane + 32 < n ? expf(s1 - m) : 0.f;
            p_s[warp][lane] = e0;
            p_s[warp][lane + 32] = e1;
            const float l = warp_sum(e0 + e1);
            const float rescale = expf(m_old - m); // 0 for the first chunk (m_old = -inf)
            __syncwarp();
            if (lane == 0) max_s[warp] = m, sum_s[warp] = fmaf(sum_s[warp], rescale, l), rescale_s[warp] = rescale;
        }
        __syncthreads();

#pragma unroll
        for (int r = 0; r < G; ++r) {
            if (r >= group) break;
            const float f = rescale_s[r];
#pragma unroll
            for (int e = 0; e < E; ++e) acc[r][e] *= f;
        }
#pragma unroll
        for (int i = 0; i < rows_per_warp; ++i) {
            const int t = warp + block_warps * i;
            if (t >= n) break;
            float vf[E];
            row_values<E>(vw[i], c0 + t == pos, new_v_s, lane, vf);
#pragma unroll
            for (int r = 0; r < G; ++r) {
                if (r >= group) break;
                const float pr = p_s[r][t];
#pragma unroll
                for (int e = 0; e < E; ++e) acc[r][e] = fmaf(pr, vf[e], acc[r][e]);
            }
        }
        if (c + 1 < chunks) {
#pragma unroll
            for (int i = 0; i < rows_per_warp; ++i) kw[i] = kn[i], vw[i] = vn[i];
            if (early && c + 2 < chunks) load_chunk(c + 2, kn, vn);
        }
    }
#pragma unroll
    for (int r = 0; r < G; ++r) {
        if (r >= group) break;
#pragma unroll
        for (int e = 0; e < E; ++e) acc_s[warp][r][E * lane + e] = acc[r][e];
    }
    __syncthreads();

    // Scratch: split counters [B * Hkv], then partials [B * Hkv][splits][group][D + 2] (output, max, sum).
    int *counters = static_cast<int *>(a.scratch);
    float *partials = reinterpret_cast<float *>(static_cast<char *>(a.scratch) + align256(size_t(a.batch) * a.kv_heads * sizeof(int)));
    auto partial = [&](int s, int r) { return partials + ((size_t(bg) * splits + s) * group + r) * (D + 2); };
    for (int idx = threadIdx.x; idx < group * D; idx += block_threads) {
        const int r = idx / D, d = idx - r * D;
        float o = 0.f;
#pragma unroll
        for (int w = 0; w < block_warps; ++w) o += acc_s[w][r][d];
        if (active == 1) out[idx] = __float2half_rn(__fdiv_rn(o, sum_s[r]));
        else partial(split, r)[d] = o;
    }
    if (active == 1) return;
    if (threadIdx.x < group) {
        partial(split, threadIdx.x)[D] = max_s[threadIdx.x];
        partial(split, threadIdx.x)[D + 1] = sum_s[threadIdx.x];
    }
    __threadfence(); // this block's partials reach L2 before its arrival is counted
    __syncthreads();
    if (threadIdx.x == 0) last_s = atomicAdd(&counters[bg], 1) == active - 1;
    __syncthreads();
    if (!last_s) return;
    __threadfence();
    // The last block combines every split's partial in split order (fixed, whatever the timing).
    if (group * D > block_threads || active > 8) {
        combine_splits<D, G>(partials + size_t(bg) * splits * group * (D + 2), group, active, &acc_s[0][0][0], out);
    } else {
        const int r = threadIdx.x / D, d = threadIdx.x - r * D;
        if (r < group) { // every split's loads in flight at once, in two chains
            float m = -INFINITY;
#pragma unroll 8
            for (int s = 0; s < active; ++s) m = fmaxf(m, __ldcg(partial(s, r) + D));
            float o = 0.f, l = 0.f;
#pragma unroll 8
            for (int s = 0; s < active; ++s) {
                const float w = expf(__ldcg(partial(s, r) + D) - m);
                o = fmaf(w, __ldcg(partial(s, r) + d), o);
                l = fmaf(w, __ldcg(partial(s, r) + D + 1), l);
            }
            out[threadIdx.x] = __float2half_rn(__fdiv_rn(o, l));
        }
    }
    if (threadIdx.x == 0) counters[bg] = 0; // ready for the next launch (stream order)
}

bool aligned(const void *p, size_t bytes) { return (reinterpret_cast<uintptr_t>(p) % bytes) == 0; }

} // namespace

status decode_attn_supports(int heads, int kv_heads, int head_dim) {
    if (heads <= 0 || kv_heads <= 0 || heads % kv_heads)
        return status::failure(status_code::unsupported_shape, "decode_attention: n_heads must be a positive multiple of n_kv_heads (n_heads=" +
                                                                   std::to_string(heads) + ", n_kv_heads=" + std::to_string(kv_heads) + ")");
    if (heads / kv_heads > decode_attn_max_group)
        return status::failure(status_code::unsupported_shape, "decode_attention: at most " + std::to_string(decode_attn_max_group) +
                                                                   " query heads per KV head (n_heads / n_kv_heads = " + std::to_string(heads / kv_heads) + ")");
    if (head_dim != 64 && head_dim != 128)
        return status::failure(status_code::unsupported_shape, "decode_attention: head_dim must be 64 or 128 (head_dim=" + std::to_string(head_dim) + ")");
    return status::success();
}

size_t decode_attn_scratch_bytes(int batch, int heads, int kv_heads, int head_dim, int capacity) {
    const size_t groups = size_t(batch) * kv_heads;
    return align256(groups * sizeof(int)) + groups * splits_of(batch, kv_heads, capacity) * size_t(heads / kv_heads) * (head_dim + 2) * sizeof(float);
}

status decode_attention(const decode_attn_args &a, cudaStream_t stream) {
    if (auto st = decode_attn_supports(a.heads, a.kv_heads, a.head_dim); !st) return st;
    if (a.batch <= 0 || a.capacity <= 0 || a.rope_rows <= 0)
        return status::failure(status_code::invalid_argument, "decode_attention: batch, capacity and rope_rows must be positive (batch=" +
                                                                  std::to_string(a.batch) + ", capacity=" + std::to_string(a.capacity) +
                                                                  ", rope_rows=" + std::to_string(a.rope_rows) + ")");
    if (!a.q || !a.k || !a.v || !a.cache_k || !a.cache_v || !a.rope_cos || !a.rope_sin || !a.pos || !a.out || !a.scratch)
        return status::failure(status_code::invalid_argument, "decode_attention: a null pointer among q, k, v, caches, rope tables, pos, out, scratch");
    // Each lane moves D / 32 fp16 values as one word.
    const size_t word = size_t(a.head_dim) / 32 * sizeof(__half);
    const int64_t word_elems = a.head_dim / 32;
    for (const void *p : {(const void *)a.q, (const void *)a.k, (const void *)a.v, (const void *)a.cache_k, (const void *)a.cache_v, (const void *)a.out})
        if (!aligned(p, word)) return status::failure(status_code::invalid_argument, "decode_attention: q, k, v, caches and out must be " + std::to_string(word) + "-byte aligned");
    if (a.q_stride % word_elems || a.k_stride % word_elems || a.v_stride % word_elems)
        return status::failure(status_code::invalid_argument, "decode_attention: batch strides must be multiples of " + std::to_string(word_elems) + " elements");
    if (!aligned(a.scratch, 256)) return status::failure(status_code::invalid_argument, "decode_attention: scratch must be 256-byte aligned");
    const long long groups = (long long)a.batch * a.kv_heads;
    if (groups > 65535)
        return status::failure(status_code::unsupported_shape, "decode_attention: batch * n_kv_heads must be at most 65535 (" + std::to_string(groups) + ")");
    const dim3 grid(unsigned(splits_of(a.batch, a.kv_heads, a.capacity)), unsigned(groups));
    const int group = a.heads / a.kv_heads;
    auto launch = [&](auto d_tag, auto g_tag) {
        return qb::cuda::launch_maybe_pdl(decode_attn_kernel<decltype(d_tag)::value, decltype(g_tag)::value>, grid, dim3(block_threads), 0, stream,
                                          a.pdl, a, int(grid.x));
    };
    auto with_group = [&](auto d_tag) {
        if (group == 1) return launch(d_tag, std::integral_constant<int, 1>{});
        if (group == 2) return launch(d_tag, std::integral_constant<int, 2>{});
        if (group <= 4) return launch(d_tag, std::integral_constant<int, 4>{});
        return launch(d_tag, std::integral_constant<int, 8>{});
    };
    QB_CUDA_TRY(a.head_dim == 64 ? with_group(std::integral_constant<int, 64>{}) : with_group(std::integral_constant<int, 128>{}));
    QB_CUDA_TRY_LAUNCH();
    return status::success();
}

} // namespace qb::attn
