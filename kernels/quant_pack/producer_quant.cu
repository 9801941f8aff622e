// RMSNorm and SiLU x up with the activation quantizer inside (see producer_quant.h). Lane L of a
// warp owns elements 4L .. 4L + 3 of a 128-group: one 8-byte load per input, one 8-byte store of
// y and one 4-byte store of its four codes, which are also 4 consecutive bytes in the wgmma_k order
// (w6_layout.h wgmma_act_pos keeps k & 3). The codes come from act_code.cuh's division-free
// rint(y / scale), the fused GEMM's, checked on every fp16 input to equal act_quant_int8's
// __fdiv_rn formula (y is fp16, so that check covers it).
#include "common/cuda_check.h"
#include "common/pdl_launch.h"
#include "common/sm90_async.cuh"
#include "quant_pack/act_code.cuh"
#include "quant_pack/producer_quant.h"
#include "quant_pack/w6_layout.h"

#include <algorithm>
#include <string>

namespace qb::w6 {
namespace {

using qb::cuda::sm90::pdl_enter;

// RMSNorm: one block per token, up to 32 warps sharing its groups, each holding up to
// norm_max_groups_per_warp groups in registers between the sum of squares and the output (one
// read of x). The decode token's latency is the point: at m = 1 the whole kernel is one block.
constexpr int norm_max_warps = 32;
constexpr int norm_max_groups_per_warp = 8;
constexpr int norm_max_k = norm_max_warps * norm_max_groups_per_warp * group_size; // 32768
constexpr int silu_warps = 8; // silu_mul: one warp per (token, group), 8 per block

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
    float qmax, qmax_rcp;
    bool wgmma_order;
};

// Quantizes the group (row, g), of which this lane holds y values 4L .. 4L + 3 (fp16 values, as
// float): absmax, scale RN(amax / qmax), codes rint(y / scale) (no clamp needed: |y| <= amax), code
// 0 where the scale is 0 -- act_quant_int8's results (act_code.cuh).
__device__ __forceinline__ void store_codes(const codes_dst &c, int m, int k, int row, int g, int lane, const float y[4]) {
    float amax = 0.f;
#pragma unroll
    for (int e = 0; e < 4; ++e) amax = fmaxf(amax, fabsf(y[e]));
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, off));
    const act_divisor d = act_divisor_of(amax, c.qmax, c.qmax_rcp);
    const uint32_t word = pack_code_bytes(act_code_bits(y[0], d), act_code_bits(y[1], d), act_code_bits(y[2], d), act_code_bits(y[3], d));
    const int pos = c.wgmma_order ? wgmma_act_pos(4 * lane, row) : 4 * lane;
    *reinterpret_cast<uint32_t *>(c.q + size_t(row) * k + size_t(g) * group_size + pos) = d.scale > 0.f ? word : 0u;
    if (lane == 0) c.scales[size_t(g) * m + row] = d.scale;
}

// G: groups per warp (ceil(groups / warps)), held in registers from the load to the output.
// delta (optional): the residual added first, x + delta rounded to fp16 as the model's fp16 add
// rounds it (fp32 sum, one rounding), stored to sum_out and normalized.
template <int G>
__global__ void __launch_bounds__(norm_max_warps * 32) rmsnorm_quant_kernel(const __half *__restrict__ x, const __half *__restrict__ delta,
                                                                          __half *__restrict__ sum_out, const __half *__restrict__ gain, float eps,
                                                                          int m, int k, __half *__restrict__ y, codes_dst codes) {
    pdl_enter();
    const int row = blockIdx.x, warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    const int groups = k / group_size;
    const __half *xr = x + size_t(row) * k + 4 * lane;
    float v[G][4];
    float ss = 0.f;
#pragma unroll
    for (int i = 0; i < G; ++i) {
        const int g = warp + i * warps;
        if (g < groups) {
            load4(xr + size_t(g) * group_size, v[i]);
            if (delta) {
                float d[4];
                __half sh[4];
                load4(delta + size_t(row) * k + size_t(g) * group_size + 4 * lane, d);
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    sh[e] = __float2half_rn(__fadd_rn(v[i][e], d[e]));
                    v[i][e] = __half2float(sh[e]);
                }
                store4(sum_out + size_t(row) * k + size_t(g) * group_size + 4 * lane, sh);
            }
        } else {
            v[i][0] = v[i][1] = v[i][2] = v[i][3] = 0.f;
        }
    }
#pragma unroll
    for (int i = 0; i < G; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e) ss = fmaf(v[i][e], v[i][e], ss);
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
    __shared__ float warp_sums[norm_max_warps];
    if (lane == 0) warp_sums[warp] = ss;
    __syncthreads();
    float total = 0.f;
    for (int w = 0; w < warps; ++w) total += warp_sums[w]; // the same order in every thread
    const float r = rsqrtf(__fdiv_rn(total, float(k)) + eps);
#pragma unroll
    for (int i = 0; i < G; ++i) {
        const int g = warp + i * warps;
        if (g >= groups) break; // warp-uniform
        float w[4], yf[4];
        __half yh[4];
        load4(gain + size_t(g) * group_size + 4 * lane, w);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            yh[e] = __float2half_rn(__fmul_rn(__fmul_rn(v[i][e], r), w[e]));
            yf[e] = __half2float(yh[e]);
        }
        if (y) store4(y + size_t(row) * k + size_t(g) * group_size + 4 * lane, yh);
        if (codes.q) store_codes(codes, m, k, row, g, lane, yf);
    }
}

__global__ void __launch_bounds__(silu_warps * 32) silu_mul_quant_kernel(const __half *__restrict__ gate, const __half *__restrict__ up, int ld,
                                                                         int m, int k, __half *__restrict__ y, codes_dst codes) {
    pdl_enter();
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
        if (auto st = check_act_bits(who, c.bits); !st) return st;
        if (reinterpret_cast<uintptr_t>(c.q) & 3) return status::failure(status_code::invalid_argument, w + ": codes must be 4-byte aligned");
    }
    return status::success();
}

codes_dst to_dst(const act_codes_out &c) {
    const float qmax = c.bits == 6 ? 31.f : 127.f;
    return {c.q, c.scales, qmax, 1.f / qmax, c.order == int8_order::wgmma_k};
}

status launch_rmsnorm(const char *who, const __half *x, const __half *delta, __half *sum_out, const __half *gain, float eps, int m, int k, __half *y,
                      const act_codes_out &codes, cudaStream_t stream, bool pdl) {
    if (auto st = check_producer(who, m, k, y, codes); !st) return st;
    if (!x || !gain || !aligned8(x) || !aligned8(gain))
        return status::failure(status_code::invalid_argument, std::string(who) + ": x and gain must be non-null and 8-byte aligned");
    if (k > norm_max_k)
        return status::failure(status_code::unsupported_shape,
                               std::string(who) + ": k must be at most " + std::to_string(norm_max_k) + " (k=" + std::to_string(k) + ")");
    const int groups = k / group_size, warps = std::min(groups, norm_max_warps);
    const int per_warp = (groups + warps - 1) / warps;
    auto kernel = per_warp <= 1 ? rmsnorm_quant_kernel<1> : per_warp <= 2 ? rmsnorm_quant_kernel<2> : per_warp <= 4 ? rmsnorm_quant_kernel<4> : rmsnorm_quant_kernel<8>;
    QB_CUDA_TRY(qb::cuda::launch_maybe_pdl(kernel, unsigned(m), unsigned(32 * warps), 0, stream, pdl, x, delta, sum_out, gain, eps, m, k, y, to_dst(codes)));
    QB_CUDA_TRY_LAUNCH();
    return status::success();
}

} // namespace

status rmsnorm_quant_int8(const __half *x, const __half *gain, float eps, int m, int k, __half *y, const act_codes_out &codes, cudaStream_t stream,
                          bool pdl) {
    return launch_rmsnorm("rmsnorm_quant_int8", x, nullptr, nullptr, gain, eps, m, k, y, codes, stream, pdl);
}

status add_rmsnorm_quant_int8(const __half *x, const __half *delta, const __half *gain, float eps, int m, int k, __half *sum_out, __half *y,
                              const act_codes_out &codes, cudaStream_t stream, bool pdl) {
    if (!delta || !sum_out || !aligned8(delta) || !aligned8(sum_out))
        return status::failure(status_code::invalid_argument, "add_rmsnorm_quant_int8: delta and sum_out must be non-null and 8-byte aligned");
    if (sum_out == x || sum_out == delta)
        return status::failure(status_code::invalid_argument, "add_rmsnorm_quant_int8: sum_out must not alias x or delta");
    return launch_rmsnorm("add_rmsnorm_quant_int8", x, delta, sum_out, gain, eps, m, k, y, codes, stream, pdl);
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
