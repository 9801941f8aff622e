// One activation code, rint(x / scale) with ties to even, without a division per value: the
// quantizer fused into the decode GEMM (w6_gemm_kernel.cuh, imma_fused_mode) computes up to 32
// codes per lane per K group, and __fdiv_rn costs a dozen instructions with a slow-path branch.
//
// The quotient comes from a reciprocal and one correction (Markstein): with inv ~ 1 / s and
// y = RN(x * inv), the residual r = x - y * s is exact in an FMA, and RN(y + r * inv) is the
// correctly rounded quotient RN(x / s) (the theorem asks for inv = RN(1 / s); here inv is the
// hardware's rcp.approx, within an ulp). Adding 1.5 * 2^23 then rounds it to an integer (ties to
// even, exact for |q| < 2^22) and leaves the code in the low byte of the float's bits, two's
// complement: no F2I and no clamp, since |x| <= amax keeps |x / s| below qmax + 1/2.
//
// What makes this safe is exhaustion, not the theorem: the inputs are fp16, so
// tests/kernels/w6/test_w6_kernels.cpp checks every finite fp16 amax > 0 with every fp16 x with
// |x| <= amax (1,007,713,278 pairs), for qmax 31 and 127, against act_quant_int8's formula
// (clamp(rint(__fdiv_rn(x, __fdiv_rn(amax, qmax))))), and every scale against __fdiv_rn: all
// equal on the H100. Non-finite activations are outside that domain (their codes are
// unspecified; act_quant_int8's outputs are then NaN anyway).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace qb::w6 {

struct act_divisor {
    float scale, inv; // scale = RN(amax / qmax) (the stored scale), inv ~ 1 / scale
};

// qmax_rcp = RN(1 / qmax): the scale RN(amax / qmax) by the same correction as the codes (three
// dependent FMAs instead of a division with its slow-path check; exhaustively checked too).
__device__ __forceinline__ act_divisor act_divisor_of(float amax, float qmax, float qmax_rcp) {
    const float y = __fmul_rn(amax, qmax_rcp);
    const float s = __fmaf_rn(__fmaf_rn(-y, qmax, amax), qmax_rcp, y);
    float inv;
    asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(inv) : "f"(s)); // s >= 2^-24 / 127: a normal number
    return {s, inv};
}

// The bits of 1.5 * 2^23 + rint(x / scale): the code is the low byte. Meaningless when scale is 0
// (the caller writes code 0 then, as act_quant_int8 does).
__device__ __forceinline__ uint32_t act_code_bits(float x, act_divisor d) {
    const float y = __fmul_rn(x, d.inv);
    const float r = __fmaf_rn(-y, d.scale, x);
    const float q = __fmaf_rn(r, d.inv, y);
    return __float_as_uint(__fadd_rn(q, 12582912.f));
}

// Four codes' low bytes packed into one word, the first in the lowest byte.
__device__ __forceinline__ uint32_t pack_code_bytes(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3) {
    return __byte_perm(__byte_perm(c0, c1, 0x0040), __byte_perm(c2, c3, 0x0040), 0x5410);
}

} // namespace qb::w6
