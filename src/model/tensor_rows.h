// A [..., K] activation as the rows of a matrix, for kernels that take a row pointer and a row
// stride: q, k, v or gate, up sliced off one fused GEMM's output keep that output's row stride, and
// reading them in place spares a copy per slice.
#pragma once
#include <ATen/ATen.h>

namespace qb {

struct tensor_rows {
    at::Tensor rows; // [M, K], unit stride along K: a view of the input where its leading dims flatten
    int64_t ld = 0;  // elements from one row to the next (K when M = 1)
};

// Copies only where a view cannot be had (leading dims that do not flatten, or a strided last dim).
inline tensor_rows rows_of(const at::Tensor &t, int64_t k) {
    auto r = t.reshape({-1, k});
    if (r.stride(1) != 1) r = r.contiguous();
    return {r, r.size(0) > 1 ? r.stride(0) : k};
}

} // namespace qb
