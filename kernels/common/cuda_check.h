// One way to check CUDA and cuBLAS calls in torch-free code: a failing call becomes a qb::status
// naming the statement, the error, the device and file:line (ggml style), which the caller
// returns; adapters turn it into an exception with context.
#pragma once
#include "core/status.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <string>

namespace qb::cuda {

std::string describe_failure(const char *statement, const char *error, const char *file, int line);

} // namespace qb::cuda

// Evaluates a cudaError_t expression; on failure returns a status from the enclosing function.
#define QB_CUDA_TRY(expr)                                                                                              \
    do {                                                                                                               \
        cudaError_t qb_err_ = (expr);                                                                                  \
        if (qb_err_ != cudaSuccess)                                                                                    \
            return ::qb::status::failure(::qb::status_code::internal,                                                  \
                                         ::qb::cuda::describe_failure(#expr, cudaGetErrorString(qb_err_), __FILE__,   \
                                                                      __LINE__));                                      \
    } while (0)

// Same for cublasStatus_t.
#define QB_CUBLAS_TRY(expr)                                                                                            \
    do {                                                                                                               \
        cublasStatus_t qb_st_ = (expr);                                                                                \
        if (qb_st_ != CUBLAS_STATUS_SUCCESS)                                                                           \
            return ::qb::status::failure(::qb::status_code::internal,                                                  \
                                         ::qb::cuda::describe_failure(#expr, cublasGetStatusString(qb_st_), __FILE__, \
                                                                      __LINE__));                                      \
    } while (0)

// After a kernel launch: launch-configuration errors show up in cudaGetLastError.
#define QB_CUDA_TRY_LAUNCH() QB_CUDA_TRY(cudaGetLastError())
