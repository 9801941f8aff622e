// RMSNorm and SiLU x up with the activation quantizer inside (see producer_quant.h). Lane L of a
// warp owns elements 4L .. 4L + 3 of a 128-group: one 8-byte load per input, one 8-byte store of
// y and one 4-byte store of its four codes, which are also 4 consecutive bytes in the wgmma_k order
// (w6_layout.h wgmma_act_pos keeps k & 3).
#include "common/cuda_check.h"
#include "common/pdl_launch.h"
#include "common/sm90_async.cuh"
#include "quant_pack/producer_quant.h"
#include "quant_pack/w6_layout.h"

#include <string>

namespace qb::w6 {
namespace {

using qb::cuda::sm90::pdl_launch_dependents;
using qb::cuda::sm90::pdl_wait;

constexpr int norm_threads = 512; // one block per token; 16 warps share its groups
constexpr int silu_warps = 8;     // silu_mul: one warp per (token, group), 8 per block

__device__ __forceinline__ void load4(const __half *p, float v[4]) {
    const uint2 raw = *reinterpret_cast<const uint2 *>(p);
    const float2 a = __half22float2(*reinterpret_cast<const __half2 *>(&raw.x));
    const float2 b = __half22float2(*reinterpret_cast<const __half2 *>(&raw.y));
    v[0] = a.x, v[1] = a.y, v[2] = b.x, v[3] = b.y;
}

__device__ __forceinline__ void store4(__half *p, const __half h[4]) {
    uint2 raw;
    *reinterpret_cast<__half2 *>(&raw.x) = __halves2half2(h[0], h[1]);
    *reinterpret_cast<__half2 *>(&raw.y) = __halves2half2(h[2], h[3]);
    *reinterpret_cast<uint2 *>(p) = raw;
}

struct codes_dst {
    int8_t *q;
    float *scales;
    float qmax;
    bool wgmma_order;
};

// Quantizes the group (row, g), of which this lane holds y values 4L .. 4L + 3 (fp16 values, as
// float), with act_quant_int8's operations (act_quant.cu quant_group): absmax, __fdiv_rn scale,
// rint(__fdiv_rn(y, scale)) clamped; code 0 where the scale is 0.
__device__ __forceinline__ void store_codes(const codes_dst &c, int m, int k, int row, int g, int lane, const float y[4]) {
    float amax = 0.f;
#pragma unroll
    for (int e = 0; e < 4; ++e) amax = fmaxf(amax, fabsf(y[e]));
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
    const float scale = __fdiv_rn(amax, c.qmax);
    uint32_t word = 0;
#pragma unroll
    for (int e = 0; e < 4; ++e) {
        float r = 0.f;
        if (scale > 0.f) r = fminf(c.qmax, fmaxf(-c.qmax - 1.f, rintf(__fdiv_rn(y[e], scale))));
        word |= (uint32_t(int(r)) & 0xFFu) << (8 * e);
    }
    const int pos = c.wgmma_order ? wgmma_act_pos(4 * lane, row) : 4 * lane;
    *reinterpret_cast<uint32_t *>(c.q + size_t(row) * k + size_t(g) * group_size + pos) = word;
    if (lane == 0) c.scales[size_t(g) * m + row] = scale;
}

__global__ void __launch_bounds__(norm_threads) rmsnorm_quant_kernel(const __half *__restrict__ x, const __half *__restrict__ gain, float eps, int m,
                                                                     int k, __half *__restrict__ y, codes_dst codes) {
    pdl_launch_dependents();
    pdl_wait();
    const int row = blockIdx.x, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int groups = k / group_size;
    const __half *xr = x + size_t(row) * k + 4 * lane;
    float ss = 0.f;
    for (int g = warp; g < groups; g += norm_threads / 32) {
        float v[4];
        load4(xr + size_t(g) * group_size, v);
#pragma unroll
        for (int e = 0; e < 4; ++e) ss = fmaf(v[e], v[e], ss);
    }
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
    __shared__ float warp_sums[norm_threads / 32];
    if (lane == 0) warp_sums[warp] = ss;
    __syncthreads();
    float total = 0.f;
#pragma unroll
    for (int w = 0; w < norm_threads / 32; ++w) total += warp_sums[w]; // the same order in every thread
    const float r = rsqrtf(__fdiv_rn(total, float(k)) + eps);
    // Second pass over x: the block's row (<= 56 KB at K = 28672) is still in L1.
    for (int g = warp; g < groups; g += norm_threads / 32) {
        float v[4], w[4], yf[4];
        __half yh[4];
        load4(xr + size_t(g) * group_size, v);
        load4(gain + size_t(g) * group_size + 4 * lane, w);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            yh[e] = __float2half_rn(__fmul_rn(__fmul_rn(v[e], r), w[e]));
            yf[e] = __half2float(yh[e]);
        }
        if (y) store4(y + size_t(row) * k + size_t(g) * group_size + 4 * lane, yh);
        if (codes.q) store_codes(codes, m, k, row, g, lane, yf);
    }
}

__global__ void __launch_bounds__(silu_warps * 32) silu_mul_quant_kernel(const __half *__restrict__ gate, const __half *__restrict__ up, int ld,
                                                                         int m, int k, __half *__restrict__ y, codes_dst codes) {
    pdl_launch_dependents();
    pdl_wait();
    const int groups = k / group_size;
    const int warp = (blockIdx.x * blockDim.x + threadIdx.x) >> 5, lane = threadIdx.x & 31;
    if (warp >= m * groups) return;
    const int row = warp / groups, g = warp % groups;
    const size_t in = size_t(row) * ld + size_t(g) * group_size + 4 * lane;
    float gv[4], uv[4], yf[4];
    __half yh[4];
    load4(gate + in, gv);
    load4(up + in, uv);
#pragma unroll
    for (int e = 0; e < 4; ++e) {
        // at::silu on fp16 (opmath fp32, IEEE division, expf), rounded; then the fp16 product.
        const __half s = __float2half_rn(__fdiv_rn(gv[e], 1.f + expf(-gv[e])));
        yh[e] = __float2half_rn(__half2float(s) * uv[e]);
        yf[e] = __half2float(yh[e]);
    }
    if (y) store4(y + size_t(row) * k + size_t(g) * group_size + 4 * lane, yh);
    if (codes.q) store_codes(codes, m, k, row, g, lane, yf);
}

bool aligned8(const void *p) { return (reinterpret_cast<uintptr_t>(p) & 7) == 0; }

status check_producer(const char *who, int m, int k, const __half *y, const act_codes_out &c) {
    const std::string w(who);
    if (m <= 0 || k <= 0) return status::failure(status_code::invalid_argument, w + ": m and k must be positive (m=" + std::to_string(m) + ", k=" + std::to_string(k) + ")");
    if (k % group_size)
        return status::failure(status_code::unsupported_shape, w + ": k must be a multiple of 128 (k=" + std::to_string(k) + ", k % 128 = " + std::to_string(k % group_size) + ")");
    if (!y && !c.q) return status::failure(status_code::invalid_argument, w + ": neither y nor codes to write");
    if (y && !aligned8(y)) return status::failure(status_code::invalid_argument, w + ": y must be 8-byte aligned");
    if (c.q) {
        if (!c.scales) return status::failure(status_code::invalid_argument, w + ": codes without a scales buffer");
        if (c.bits != 6 && c.bits != 8)
            return status::failure(status_code::unsupported_option, w + ": bits must be 6 or 8 (bits=" + std::to_string(c.bits) + ")");
        if (reinterpret_cast<uintptr_t>(c.q) & 3) return status::failure(status_code::invalid_argument, w + ": codes must be 4-byte aligned");
    }
    return status::success();
}

codes_dst to_dst(const act_codes_out &c) { return {c.q, c.scales, c.bits == 6 ? 31.f : 127.f, c.order == int8_order::wgmma_k}; }

} // namespace

status rmsnorm_quant_int8(const __half *x, const __half *gain, float eps, int m, int k, __half *y, const act_codes_out &codes, cudaStream_t stream,
                          bool pdl) {
    if (auto st = check_producer("rmsnorm_quant_int8", m, k, y, codes); !st) return st;
    if (!x || !gain || !aligned8(x) || !aligned8(gain))
        return status::failure(status_code::invalid_argument, "rmsnorm_quant_int8: x and gain must be non-null and 8-byte aligned");
    QB_CUDA_TRY(qb::cuda::launch_maybe_pdl(rmsnorm_quant_kernel, unsigned(m), norm_threads, 0, stream, pdl, x, gain, eps, m, k, y, to_dst(codes)));
    QB_CUDA_TRY_LAUNCH();
    return status::success();
}

status silu_mul_quant_int8(const __half *gate, const __half *up, int ld, int m, int k, __half *y, const act_codes_out &codes, cudaStream_t stream,
                           bool pdl) {
    if (auto st = check_producer("silu_mul_quant_int8", m, k, y, codes); !st) return st;
    if (!gate || !up || !aligned8(gate) || !aligned8(up))
        return status::failure(status_code::invalid_argument, "silu_mul_quant_int8: gate and up must be non-null and 8-byte aligned");
    if (ld < k || ld % 4)
        return status::failure(status_code::invalid_argument,
                               "silu_mul_quant_int8: ld must be >= k and a multiple of 4 (ld=" + std::to_string(ld) + ", k=" + std::to_string(k) + ")");
    const long long warps = (long long)m * (k / group_size);
    QB_CUDA_TRY(qb::cuda::launch_maybe_pdl(silu_mul_quant_kernel, unsigned((warps + silu_warps - 1) / silu_warps), silu_warps * 32, 0, stream, pdl,
                                           gate, up, ld, m, k, y, to_dst(codes)));
    QB_CUDA_TRY_LAUNCH();
    return status::success();
}

} // namespace qb::w6
