#include "common/cuda_check.h"
#include "common/gemm_ref.h"

namespace qb::cuda {
namespace {

template <class In, class Acc>
__global__ void gemm_tn_ref_kernel(int m, int n, int k, const In *__restrict__ a, const In *__restrict__ b, Acc *__restrict__ c) {
    const int col = blockIdx.x * blockDim.x + threadIdx.x; // n
    const int row = blockIdx.y;                             // m
    if (col >= n || row >= m) return;
    Acc acc = 0;
    const In *ar = a + static_cast<size_t>(row) * k;
    const In *br = b + static_cast<size_t>(col) * k;
    for (int i = 0; i < k; ++i) acc += static_cast<Acc>(ar[i]) * static_cast<Acc>(br[i]);
    c[static_cast<size_t>(row) * n + col] = acc;
}

template <class In, class Acc>
status launch(int m, int n, int k, const In *a, const In *b, Acc *c, cudaStream_t stream) {
    if (m <= 0 || n <= 0 || k <= 0) return status::failure(status_code::invalid_argument, "m, n and k must be positive");
    if (m > 65535) return status::failure(status_code::unsupported_shape, "reference kernel handles m <= 65535 (grid.y)");
    dim3 block(128);
    dim3 grid((n + block.x - 1) / block.x, m);
    gemm_tn_ref_kernel<In, Acc><<<grid, block, 0, stream>>>(m, n, k, a, b, c);
    QB_CUDA_TRY_LAUNCH();
    return status::success();
}

} // namespace

status gemm_s8s8_s32_tn_ref(int m, int n, int k, const int8_t *a, const int8_t *b, int32_t *c, cudaStream_t stream) {
    if (k >= 131072) return status::failure(status_code::unsupported_shape, "k >= 131072 could overflow the int32 accumulator");
    return launch<int8_t, int32_t>(m, n, k, a, b, c, stream);
}

status gemm_f16_f32acc_tn_ref(int m, int n, int k, const __half *a, const __half *b, float *c, cudaStream_t stream) {
    return launch<__half, float>(m, n, k, a, b, c, stream);
}

} // namespace qb::cuda
