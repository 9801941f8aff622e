// flexq_btc: FlexQ's bit-plane W6A6 / W6A8 GEMM on the binary tensor cores (mma.sync m16n8k256
// .b1 and.popc, the Hopper-fast shape). Weights pre-packed as 6 bit planes (pack_weights_btc),
// activations as 6 or 8 planes from the fused quantizer (act_quant_planes). Each k256 multiply
// covers two plane pairs with the same coefficient (btc_schedule). Per-group int32 results are
// bit-identical to w6_imma's; scales multiplied in fp32 (not fp16, which underflows); any m, n;
// k a multiple of 128. Formulas: quant_pack/w6_gemm.h.
//   test:  tests/kernels/w6/test_w6_kernels.cpp (suite gpu)
//   bench: build*/kernels/bench/bench_kernels --benchmark_filter=flexq_btc
#pragma once
#include "quant_pack/w6_gemm.h"

namespace qb::w6 {

status flexq_btc_supports(int m, int n, int k, int a_bits);
status flexq_btc_run(const gemm_args &args, cudaStream_t stream);

} // namespace qb::w6
