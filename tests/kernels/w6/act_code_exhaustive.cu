// Exhaustive check of act_code.cuh (the division-free activation code of the fused quantizer):
// every finite fp16 amax > 0 and every fp16 x with |x| <= amax, both signs, against the formula
// of act_quant_int8 (clamp(rint(__fdiv_rn(x, __fdiv_rn(amax, qmax))))), and every scale against
// __fdiv_rn(amax, qmax). One block per amax.
#include "act_code_exhaustive.h"

#include "quant_pack/act_code.cuh"

#include <cuda_fp16.h>

namespace {

// counts: [0] pairs checked, [1] codes that differ, [2] scales that differ.
__global__ void act_code_check_kernel(float qmax, unsigned long long *counts, unsigned long long *first_bad) {
    const uint32_t a = blockIdx.x + 1; // fp16 bits of amax: 0x0001 .. 0x7BFF
    const float amax = __half2float(__ushort_as_half(uint16_t(a)));
    const qb::w6::act_divisor d = qb::w6::act_divisor_of(amax, qmax, 1.f / qmax);
    const float scale = __fdiv_rn(amax, qmax); // act_quant_int8's scale
    unsigned long long checked = 0, bad = 0;
    if (threadIdx.x == 0 && __float_as_uint(d.scale) != __float_as_uint(scale)) {
        atomicAdd(&counts[2], 1ull);
        atomicMin(first_bad, static_cast<unsigned long long>(a) << 32);
    }
    for (uint32_t xb = threadIdx.x; xb <= a; xb += blockDim.x)
        for (uint32_t sign : {0u, 0x8000u}) {
            const float x = __half2float(__ushort_as_half(uint16_t(xb | sign)));
            const float want = fminf(qmax, fmaxf(-qmax - 1.f, rintf(__fdiv_rn(x, scale))));
            const int got = int(int8_t(qb::w6::act_code_bits(x, d) & 0xFFu));
            ++checked;
            if (got != int(want)) {
                ++bad;
                // Keep the smallest failing (amax, x) pair: reproducible across runs.
                atomicMin(first_bad, (static_cast<unsigned long long>(a) << 32) | (xb | sign));
            }
        }
    atomicAdd(&counts[0], checked);
    atomicAdd(&counts[1], bad);
}

} // namespace

act_code_report act_code_exhaustive(int bits) {
    act_code_report r;
    unsigned long long *dev = nullptr;
    if (cudaMalloc(&dev, 4 * sizeof(unsigned long long)) != cudaSuccess) return r;
    const unsigned long long init[4] = {0, 0, 0, ~0ull};
    cudaMemcpy(dev, init, sizeof(init), cudaMemcpyHostToDevice);
    act_code_check_kernel<<<0x7BFF, 256>>>(bits == 6 ? 31.f : 127.f, dev, dev + 3);
    unsigned long long host[4] = {0, 0, 0, 0};
    if (cudaDeviceSynchronize() == cudaSuccess && cudaMemcpy(host, dev, sizeof(host), cudaMemcpyDeviceToHost) == cudaSuccess) {
        r.ran = true;
        r.checked = host[0];
        r.mismatches = host[1];
        r.scale_mismatches = host[2];
        if (host[1] || host[2]) {
            r.first_amax_bits = uint16_t(host[3] >> 32);
            r.first_x_bits = uint16_t(host[3] & 0xFFFFu);
        }
    }
    cudaFree(dev);
    return r;
}
