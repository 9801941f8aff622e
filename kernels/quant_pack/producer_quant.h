// The activation quantizer inside the kernels that produce a linear's input: RMSNorm (input of
// q/k/v and gate/up) and SiLU(gate) x up (input of down). Each writes, besides (or instead of) its
// fp16 result y, the per-token, per-128-group codes and scales of y in the layout w6_imma reads
// (act_quant.h's int8 layout: q [M, K], natural or wgmma_k order; scales [K/128][M]).
//
// Why: chained layer to layer (programmatic dependent launch), a separate quantizer stays on the
// critical path. It reads what the kernel ahead writes and the GEMM reads what it writes, so its
// 1.3-1.5 us are serial however the launches overlap (docs/kernels.md, "What limits each ->
// Quantizer"). The per-group scale needs only the absmax of 128 values of y, which the producer
// has in registers before it stores them, so quantizing there costs a few instructions per value
// and no launch.
//
// Exactness contract: the codes and scales are bit-identical to act_quant_int8 applied to the y this
// kernel computes (the same fp32 operations on the same fp16 values; tests check it with y written
// out). y itself is a float path:
//   rmsnorm: y = fp16(RN(RN(x * r) * gain)), r = rsqrtf(mean(x^2) + eps), the mean summed in fp32 in
//            a fixed order; the formula of the model (src/model/llama.cpp), whose ATen reduction
//            sums in another order: y may differ from it by one fp16 ulp where the exact value lies
//            within ~1e-6 (relative) of a rounding boundary.
//   silu_mul: y = fp16(fp16(g / (1 + expf(-g))) * u), ATen's fp16 at::silu(g) * u operation by operation.
// Both kernels are deterministic. Launched with `pdl` they wait for the kernel ahead before reading
// their inputs, and let the GEMM behind start at once (it streams weights meanwhile).
// Test: tests/kernels/w6/test_w6_kernels.cpp (gpu); bench: kernels/bench/bench_kernels.cpp
// (rmsnorm* / silu_mul* rows).
#pragma once
#include "core/status.h"
#include "quant_pack/act_quant.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace qb::w6 {

// Where the producer writes codes; q == nullptr: no codes (the plain producer, e.g. for an fp16
// consumer, or as the benchmark's baseline). bits 6 or 8.
struct act_codes_out {
    int8_t *q = nullptr;
    float *scales = nullptr;
    int bits = 8;
    int8_order order = int8_order::natural;
};

// x, y [M, K] (row stride K), gain [K]; K a multiple of 128, at most 32768 (one block per token
// holds its row in registers). y may be nullptr when codes are written.
status rmsnorm_quant_int8(const __half *x, const __half *gain, float eps, int m, int k, __half *y, const act_codes_out &codes,
                          cudaStream_t stream, bool pdl = false);

// The residual add before the norm in the same pass: sum = fp16(float(x) + float(delta)), as the
// model's fp16 add rounds it, written to sum_out [M, K] (not aliasing x or delta), then RMSNorm of
// sum as above (y and codes bit-identical to rmsnorm_quant_int8 applied to sum).
status add_rmsnorm_quant_int8(const __half *x, const __half *delta, const __half *gain, float eps, int m, int k, __half *sum_out, __half *y,
                              const act_codes_out &codes, cudaStream_t stream, bool pdl = false);

// gate, up: row r at gate + r * ld, up + r * ld (a fused gate_up GEMM's [M, 2K] output: up = gate + K,
// ld = 2K); y [M, K] (row stride K). K a multiple of 128, ld a multiple of 4 and >= K.
status silu_mul_quant_int8(const __half *gate, const __half *up, int ld, int m, int k, __half *y, const act_codes_out &codes,
                           cudaStream_t stream, bool pdl = false);

} // namespace qb::w6
