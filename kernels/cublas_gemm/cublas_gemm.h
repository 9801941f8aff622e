// Baselines on cuBLAS / cuBLASLt (torch-free), row-major [M, K] x [N, K]^T -> [M, N]:
//   fp16:               cublasGemmEx fp16 TN, fp32 accumulate, fp16 out.
//   cublaslt_w8a8:      cuBLASLt int8 TN, int32 accumulate, per-token x per-channel fp32 scales,
//                       fp16 out, heuristic-selected algorithm. The scales are fused into the
//                       GEMM (CUBLASLT_MATMUL_MATRIX_SCALE_OUTER_VEC_32F) when this cuBLASLt
//                       offers an algorithm for it with int8; otherwise int32 out + a separate
//                       epilogue kernel. `fused_epilogue()` says which one ran.
//   cublas_w8a8_legacy: the FlexQ paper's baseline call: cublasGemmEx int8 NN, int32 out, no
//                       epilogue (weights read as a [K, N] row-major matrix).
// Handles and one 32 MB workspace live in a `cublas_context`; both cuBLAS and cuBLASLt calls use that
// workspace, so a context serves one stream at a time (qbench runs every layer on one stream).
#pragma once
#include "core/status.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>
#include <string>

namespace qb::w6 {

class cublas_context {
public:
    cublas_context();
    ~cublas_context();
    cublas_context(const cublas_context &) = delete;
    cublas_context &operator=(const cublas_context &) = delete;
    status init(); // creates handles and the cuBLASLt workspace; call once

    status gemm_fp16(int m, int n, int k, const __half *x, const __half *w, __half *out, cudaStream_t stream);
    // x int8 [m, k], w int8 [n, k], sx [m], sw [n] fp32; out fp16 [m, n]. `acc32` [m, n] int32
    // scratch for the unfused path (may be null when fused_epilogue()).
    status gemm_w8a8_lt(int m, int n, int k, const int8_t *x, const int8_t *w, const float *sx, const float *sw, __half *out,
                        int32_t *acc32, cudaStream_t stream);
    // The paper's call; out int32 [m, n] (column-major [n, m] of cuBLAS = row-major [m, n]).
    status gemm_w8a8_legacy(int m, int n, int k, const int8_t *x, const int8_t *w_kn, int32_t *out, cudaStream_t stream);

    // After a gemm_w8a8_lt: whether the scales ran inside cuBLASLt, and the algorithm's note.
    bool fused_epilogue() const { return fused_; }
    const std::string &lt_note() const { return note_; }

private:
    status bind_stream(cudaStream_t stream); // the stream, and our workspace again (cublasSetStream drops it)
    struct impl;
    std::unique_ptr<impl> p_;
    bool fused_ = false;
    std::string note_;
};

status w8a8_lt_supports(int m, int n, int k);

// out[m, n] = fp16(acc[m, n] * sx[m] * sw[n]): the unfused epilogue (also used by adapters of the
// legacy call).
status scale_epilogue_i32(int m, int n, const int32_t *acc, const float *sx, const float *sw, __half *out, cudaStream_t stream);

} // namespace qb::w6
