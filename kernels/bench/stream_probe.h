// The attainable read bandwidth of the benchmark's own harness: how long does a kernel that does
// nothing but read a layer's W6 bytes (weights + scales) take, launched and timed exactly like the
// GEMMs (one event-timed launch after the cold-L2 pass)? The W6 roofline (bytes / 3.0 TB/s)
// ignores launch latency, the DRAM ramp at the start of a launch and the drain at its end; this
// probe measures them, so a GEMM's distance from the roofline splits into "any kernel pays this"
// and "this kernel pays this". Two ways to stream: 16-byte loads from every thread (grid-stride,
// U loads in flight per thread) and bulk (TMA) copies into a shared-memory ring per block.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace qb::bench {

enum class stream_method { ldg, bulk };

struct stream_config {
    stream_method method = stream_method::ldg;
    int blocks_per_sm = 4;
    int threads = 512;      // ldg: threads per block (bulk: one warp)
    int unroll = 4;         // ldg: 16-byte loads in flight per thread
    int stage_bytes = 0;    // bulk: bytes per copy / ring stage
    int stages = 0;         // bulk: ring depth per block
};

// "ldg b4 t512 u4" / "bulk b1 s8 x16K"
std::string describe(const stream_config &c);

// Reads `bytes` (a multiple of 16, 16-byte aligned) of `buffer`; one word goes to `sink` so the
// loads stay. Returns the launch error, if any. `pdl` (ldg only; bulk: cudaErrorInvalidValue):
// launched with programmatic dependent launch, as the GEMMs under bench_kernels --chain; it
// depends on nothing, so it starts as soon as the kernel ahead lets it.
cudaError_t stream_read(const void *buffer, size_t bytes, uint32_t *sink, const stream_config &c, cudaStream_t stream, bool pdl = false);

// The probe's configuration in the benchmark rows (`stream_read`), and the sweep it was chosen
// from (bench_kernels --stream-sweep; results in docs/kernels.md).
stream_config stream_default();
std::vector<stream_config> stream_sweep();

} // namespace qb::bench
