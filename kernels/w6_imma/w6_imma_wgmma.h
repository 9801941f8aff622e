// Internal to w6_imma: the Hopper (sm_90a) wgmma path for prefill sizes. w6_imma_run picks it
// (w6_imma_uses_wgmma); see w6_imma_wgmma.cu for the kernel.
#pragma once
#include "quant_pack/w6_gemm.h"

namespace qb::w6::detail {

// Built for sm_90a and running on a compute capability 9.0 device.
bool wgmma_available();
// Activations in int8_order::wgmma_k; preconditions as w6_imma_run (checked there).
status w6_imma_wgmma_launch(const gemm_args &a, cudaStream_t stream);

} // namespace qb::w6::detail
