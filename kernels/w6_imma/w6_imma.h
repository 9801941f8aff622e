// w6_imma: W6Ax GEMM on the int8 tensor cores. 6-bit packed weights (6.125 bits/weight with the
// fp16 scales, pack_weights_imma) are unpacked in registers to int8 and multiplied with int8
// activations (A6 or A8 codes, act_quant_int8) by mma.sync m16n8k32; per-128-group int32
// accumulators are scaled in fp32; fp16 out. Decode path (m <= 16): memory-bound, weights
// streamed once; m > 16: token-tiled. Formulas: quant_pack/w6_gemm.h.
//   test:  tests/kernels/w6/test_w6_kernels.cpp (suite gpu)
//   bench: build*/kernels/bench/bench_kernels --benchmark_filter=w6_imma
#pragma once
#include "quant_pack/w6_gemm.h"

namespace qb::w6 {

// Whether w6_imma runs this problem, and why not (k % 128, non-positive sizes, a_bits).
status w6_imma_supports(int m, int n, int k, int a_bits);
status w6_imma_run(const gemm_args &args, cudaStream_t stream);

} // namespace qb::w6
