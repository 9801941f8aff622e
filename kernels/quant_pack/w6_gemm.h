// The W6Ax grouped GEMM interface shared by w6_imma and flexq_btc (torch-free):
//   out[m, n] = sum_g (float(acc[m, n, g]) * float(sw[n, g])) * sx[g, m]   (fp16 out, fp32 math)
//   acc[m, n, g] = sum_{k in group g} qa[m, k] * qw[n, k]                   (exact int32)
// Weights pre-packed (w6_layout.h), activations from act_quant.h. Any m >= 1, any n >= 1
// (rows past n are padding in the packed tiles), k a multiple of 128.
#pragma once
#include "core/status.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace qb::w6 {

struct gemm_args {
    int m = 0, n = 0, k = 0;
    int a_bits = 8;               // 6 or 8: activation code width (flexq_btc reads that many planes)
    const void *w = nullptr;      // packed weights [NT][G][1536 B] (16-byte aligned)
    const __half *w_scales = nullptr; // [NT][G][16] fp16, pairs (row i, row i + 8)
    const void *act = nullptr;    // w6_imma: int8 [m, k]; flexq_btc: planes [m][G][4][a_bits] uint32
    const float *act_scales = nullptr; // [G][m] fp32
    __half *out = nullptr;        // [m, n] row-major
    int32_t *group_acc = nullptr; // optional [m][n][G]: the exact per-group integers (tests)
    // Programmatic dependent launch (Hopper): the GEMM may start while the kernel ahead of it in the
    // stream (act_quant_*, or the previous layer's GEMM when that one is also launched so) still runs;
    // it streams its weights meanwhile and waits for that kernel before reading activations or
    // writing `out`. Every W6 GEMM lets the kernel behind it start early the same way.
    bool pdl = false;
    bool allow_wgmma = true;      // w6_imma: false keeps the mma.sync path at every m (tests, comparisons)
    // w6_imma, m <= 8 (w6_imma_fused_supports): fp16 activations [m, k], 16-byte aligned, quantized
    // inside the GEMM to a_bits (6 or 8) codes bit-identical to act_quant_int8's; act and
    // act_scales are then not read. No quantizer kernel runs before the GEMM.
    const __half *act_fp16 = nullptr;
};

// Which kernel configuration a call uses (for benchmark labels and the crossover table).
const char *w6_config_name(int m);

// decode8 (m <= 8): how many warps of a block split the K groups of its 16-row tile (8, 6, 4, 3,
// 2 or 1), so that the grid keeps as many warps streaming as the SMs hold (24 per SM, 80
// registers each). Layers of few row tiles take 8 or 6 warps per block while the whole grid
// stays resident and every warp keeps decode8_min_groups_per_warp groups: on an H200 (132 SMs)
// that made LLaMA-2-70B down (512 tiles, 6 warps) 11% faster at m = 8 and 4096 x 4096 (256
// tiles, 8 warps) 15%, against 4 warps per block. Otherwise the largest of 4, 3, 2 whose grid is
// resident at once: a grid just above one wave leaves a tail in which too few warps stream the
// weights (LLaMA-2-13B gate_up, 864 tiles, ran 11% faster at 3 than at 4 on the H100). When none
// fits, 1 at m = 1 (one wave of one-warp blocks) and 4 otherwise (measured: at m = 8 the
// one-warp blocks were 4% slower on the 28672-row layers, at m = 4 within 1.5%).
inline constexpr int decode8_min_groups_per_warp = 4;
int decode8_k_split(int m, int n, int groups, int sm_count);
// decode8, w6_imma with quantized activations: 2 (two row tiles per warp, 2 warps per block, 8
// blocks per SM: 16 warps of 128 registers) on layers of so many row tiles that no K split keeps
// the grid of one-tile warps resident at m >= 2 (decode8_k_split's fallback to 4 warps), while
// the grid of two-tile warps is; 1 otherwise. The activations then come from L2 once per two
// tiles: on an H200, LLaMA-2-70B gate_up and OPT-30B fc1 (1792 tiles, 28672 rows) ran 11-14%
// faster at m = 2 / 4 / 8 than with 4-warp blocks over 2.26 waves; at m = 1 the one wave of
// one-warp blocks stayed 1-3% faster. Smaller layers were slower with two tiles per warp (fewer
// warps streaming), so they keep one. (flexq_btc and the fused quantizer keep one tile per warp.)
int decode8_row_tiles_per_warp(int m, int n, int sm_count);

} // namespace qb::w6
