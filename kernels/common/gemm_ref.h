// Reference GEMM kernels: the naive device baselines integer and float kernels are checked
// against on the GPU (one thread per output, no tiling: obviously right, not fast).
//
//   gemm_s8s8_s32_tn_ref:  C[m, n] = sum_k A[m, k] * B[n, k]   (int8 in, int32 out)
//     A [M, K] row-major (activations), B [N, K] row-major (weights, "TN" in BLAS terms),
//     C [M, N] row-major. Exact while K * 128 * 128 < 2^31, i.e. K < 131072.
//   gemm_f16_f32acc_tn_ref: same layouts, fp16 in, fp32 accumulate and out.
//
// Test: tests/kernels/common/test_gemm_ref.cpp (suite gpu). Bench: kernels/common/bench_common.cpp.
#pragma once
#include "core/status.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace qb::cuda {

status gemm_s8s8_s32_tn_ref(int m, int n, int k, const int8_t *a, const int8_t *b, int32_t *c, cudaStream_t stream);
status gemm_f16_f32acc_tn_ref(int m, int n, int k, const __half *a, const __half *b, float *c, cudaStream_t stream);

} // namespace qb::cuda
