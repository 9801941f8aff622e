// Host side of programmatic dependent launch (the device side: sm90_async.cuh pdl_wait /
// pdl_launch_dependents): one launch helper, so every kernel that may be chained is launched the
// same way. Include from a .cu (the kernel pointer's parameter types must be visible).
#pragma once
#include <cuda_runtime.h>

#include <cstddef>

namespace qb::cuda {

// kernel<<<grid, block, smem, stream>>>(args...), with the programmatic-stream-serialization
// attribute when `pdl` (the kernel may then start before the one ahead of it in the stream ends).
template <class... Params, class... Args>
cudaError_t launch_maybe_pdl(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream, bool pdl, Args... args) {
    cudaLaunchConfig_t lc = {};
    lc.gridDim = grid;
    lc.blockDim = block;
    lc.dynamicSmemBytes = smem;
    lc.stream = stream;
    cudaLaunchAttribute attr;
    attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr.val.programmaticStreamSerializationAllowed = 1;
    lc.attrs = &attr;
    lc.numAttrs = pdl ? 1 : 0;
    return cudaLaunchKernelEx(&lc, kernel, Params(args)...);
}

} // namespace qb::cuda
