// See stream_probe.h. Both kernels xor what they read into one word per thread and store it only
// when it equals a constant that random data practically never gives: the loads cannot be elided.
#include "bench/stream_probe.h"

#include "common/device_info.h"
#include "common/load_hints.cuh"
#include "common/pdl_launch.h"
#include "common/sm90_async.cuh"

namespace qb::bench {
namespace {

constexpr uint32_t never = 0x9E3779B9u;

using qb::cuda::ld_stream;

template <int U>
__global__ void stream_ldg_kernel(const uint4 *__restrict__ src, size_t count, uint32_t *sink) {
    qb::cuda::sm90::pdl_launch_dependents(); // (only under bench_kernels --chain does the next one react)
    const size_t stride = size_t(gridDim.x) * blockDim.x;
    size_t i = blockIdx.x * size_t(blockDim.x) + threadIdx.x;
    uint32_t acc = 0;
    for (; i + (U - 1) * stride < count; i += U * stride) {
        uint4 v[U];
#pragma unroll
        for (int u = 0; u < U; ++u) v[u] = ld_stream(src + i + u * stride);
#pragma unroll
        for (int u = 0; u < U; ++u) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
    }
    for (; i < count; i += stride) {
        const uint4 v = ld_stream(src + i);
        acc ^= v.x ^ v.y ^ v.z ^ v.w;
    }
    if (acc == never) *sink = acc;
}

// One warp per block: lane 0 keeps `stages` bulk copies of the block's contiguous slice in
// flight; the warp waits for each stage, reads one word per lane of it, and refills it.
__global__ void stream_bulk_kernel(const uint8_t *__restrict__ src, size_t bytes, int stage_bytes, int stages, uint32_t *sink) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    using namespace qb::cuda::sm90;
    extern __shared__ __align__(128) uint8_t ring[];
    const uint32_t bars = smem_addr(ring + size_t(stages) * stage_bytes);
    const int lane = threadIdx.x;
    // Slices are whole multiples of 16 bytes; the last block takes the remainder.
    const size_t per = (bytes / 16 + gridDim.x - 1) / gridDim.x * 16;
    const size_t lo = min(bytes, blockIdx.x * per), hi = min(bytes, lo + per);
    const int chunks = int((hi - lo + stage_bytes - 1) / stage_bytes);
    if (lane == 0) {
        for (int s = 0; s < stages; ++s) mbar_init(bars + 8 * s, 1);
        mbar_init_fence();
    }
    __syncwarp();
    auto issue = [&](int c) {
        const int s = c % stages;
        const size_t off = lo + size_t(c) * stage_bytes;
        const uint32_t n = uint32_t(min(size_t(stage_bytes), hi - off));
        mbar_arrive_expect_tx(bars + 8 * s, n);
        bulk_copy_g2s(smem_addr(ring + size_t(s) * stage_bytes), src + off, n, bars + 8 * s);
    };
    if (lane == 0)
        for (int c = 0; c < stages && c < chunks; ++c) issue(c);
    uint32_t acc = 0;
    for (int c = 0; c < chunks; ++c) {
        const int s = c % stages;
        mbar_wait(bars + 8 * s, (c / stages) & 1);
        acc ^= reinterpret_cast<const uint32_t *>(ring + size_t(s) * stage_bytes)[lane];
        fence_proxy_async_smem();
        __syncwarp();
        if (lane == 0 && c + stages < chunks) issue(c + stages);
    }
    if (acc == never) *sink = acc;
#else
    if (threadIdx.x == 0 && blockIdx.x == 0) __trap(); // launched only on CC >= 9.0 (stream_read checks)
#endif
}

} // namespace

std::string describe(const stream_config &c) {
    if (c.method == stream_method::ldg)
        return "ldg b" + std::to_string(c.blocks_per_sm) + " t" + std::to_string(c.threads) + " u" + std::to_string(c.unroll);
    return "bulk b" + std::to_string(c.blocks_per_sm) + " s" + std::to_string(c.stages) + " x" + std::to_string(c.stage_bytes / 1024) + "K";
}

cudaError_t stream_read(const void *buffer, size_t bytes, uint32_t *sink, const stream_config &c, cudaStream_t stream, bool pdl) {
    if (bytes % 16 || reinterpret_cast<uintptr_t>(buffer) % 16) return cudaErrorInvalidValue;
    const unsigned blocks = unsigned(qb::cuda::current_device_sm_count() * c.blocks_per_sm);
    if (c.method == stream_method::ldg) {
        const auto *src = static_cast<const uint4 *>(buffer);
        const size_t count = bytes / 16;
        const dim3 grid(blocks), block(unsigned(c.threads));
        switch (c.unroll) {
        case 2: return qb::cuda::launch_maybe_pdl(stream_ldg_kernel<2>, grid, block, 0, stream, pdl, src, count, sink);
        case 4: return qb::cuda::launch_maybe_pdl(stream_ldg_kernel<4>, grid, block, 0, stream, pdl, src, count, sink);
        case 8: return qb::cuda::launch_maybe_pdl(stream_ldg_kernel<8>, grid, block, 0, stream, pdl, src, count, sink);
        default: return cudaErrorInvalidValue;
        }
    }
    if (pdl || qb::cuda::current_device_cc() < 90 || c.stage_bytes % 16 || c.stage_bytes < 128 || c.stages < 1) return cudaErrorInvalidValue;
    const size_t smem = size_t(c.stages) * c.stage_bytes + 8 * size_t(c.stages);
    if (cudaError_t e = cudaFuncSetAttribute(stream_bulk_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)); e != cudaSuccess) return e;
    stream_bulk_kernel<<<blocks, 32, smem, stream>>>(static_cast<const uint8_t *>(buffer), bytes, c.stage_bytes, c.stages, sink);
    return cudaGetLastError();
}

// The sweep's first entry, ldg b4 t512 u2, was the fastest on the H100 (geomean over the 21 shapes
// within 0.2% of the per-shape best; the bulk-copy ring 5-11% slower): docs/kernels.md.
stream_config stream_default() { return stream_sweep().front(); }

std::vector<stream_config> stream_sweep() {
    std::vector<stream_config> v;
    const int ldg[][3] = {{4, 512, 2}, {4, 512, 4}, {8, 256, 4}, {4, 512, 8}, {2, 1024, 4}, {4, 256, 8}, {16, 128, 4}};
    for (const auto &r : ldg) {
        stream_config c;
        c.method = stream_method::ldg, c.blocks_per_sm = r[0], c.threads = r[1], c.unroll = r[2];
        v.push_back(c);
    }
    const int bulk[][3] = {{1, 8, 16384}, {1, 4, 32768}, {2, 6, 16384}, {1, 12, 8192}, {4, 4, 8192}, {2, 3, 32768}};
    for (const auto &r : bulk) {
        stream_config c;
        c.method = stream_method::bulk, c.blocks_per_sm = r[0], c.threads = 32, c.stages = r[1], c.stage_bytes = r[2];
        v.push_back(c);
    }
    return v;
}

} // namespace qb::bench
