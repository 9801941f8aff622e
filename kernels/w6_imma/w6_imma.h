// w6_imma: W6Ax GEMM on the int8 tensor cores. 6-bit packed weights (6.125 bits/weight with the
// fp16 scales, pack_weights_imma) are unpacked in registers to int8 and multiplied with int8
// activations (A6 or A8 codes, act_quant_int8) by mma.sync m16n8k32; per-128-group int32
// accumulators are scaled in fp32; fp16 out. Decode path (m <= 16): memory-bound, weights
// streamed once; m > 16: token-tiled; m > 32 on an sm_90a build and an H100-class device: the
// wgmma path (w6_imma_wgmma.cu), which reads activations in int8_order::wgmma_k. At m <= 8 it can
// also take fp16 activations and quantize them itself (gemm_args::act_fp16, same codes).
// Formulas: quant_pack/w6_gemm.h.
//   test:  tests/kernels/w6/test_w6_kernels.cpp (suite gpu)
//   bench: build*/kernels/bench/bench_kernels --benchmark_filter=w6_imma
#pragma once
#include "quant_pack/act_quant.h"
#include "quant_pack/w6_gemm.h"

namespace qb::w6 {

// Whether w6_imma runs this problem, and why not (k % 128, non-positive sizes, a_bits).
status w6_imma_supports(int m, int n, int k, int a_bits);
status w6_imma_run(const gemm_args &args, cudaStream_t stream);
// Whether w6_imma_run takes the wgmma path for m tokens (then quantize the activations with
// int8_order::wgmma_k). `allow_wgmma` false (gemm_args::allow_wgmma) keeps the mma.sync path.
bool w6_imma_uses_wgmma(int m, bool allow_wgmma = true);
// The activation order act_quant_int8 must write for w6_imma_run at m tokens.
inline int8_order w6_imma_act_order(int m, bool allow_wgmma = true) {
    return w6_imma_uses_wgmma(m, allow_wgmma) ? int8_order::wgmma_k : int8_order::natural;
}
// Whether w6_imma_run can quantize the activations itself (gemm_args::act_fp16), and why not: the
// decode configuration (m <= 8), where the repeated quantization per row tile stays cheap, and
// 6- or 8-bit codes (act_quant_int8's).
status w6_imma_fused_supports(int m, int a_bits);
// The configuration w6_imma_run uses at m tokens (benchmark labels): "wgmma" or w6_config_name(m).
inline const char *w6_imma_config_name(int m) { return w6_imma_uses_wgmma(m) ? "wgmma" : w6_config_name(m); }

} // namespace qb::w6
