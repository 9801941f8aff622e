// An fp16 tensor's storage as CUDA's __half, for the torch-free kernels' interfaces: at::Half and
// __half are both IEEE binary16, so the cast only renames the type. CUDA builds only.
#pragma once
#include <ATen/ATen.h>
#include <cuda_fp16.h>

namespace qb {

inline __half *half_ptr(const at::Tensor &t) { return reinterpret_cast<__half *>(t.data_ptr<at::Half>()); }

} // namespace qb
