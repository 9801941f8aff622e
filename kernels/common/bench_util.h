// Shared pieces of the Google Benchmark binaries: CUDA-event timing with a cold L2 (an L2-sized
// memset between timed launches, so weights of 7B/13B shapes are not served from the 50 MB L2),
// and the run context every JSON carries (GPU, driver, clocks, commit).
#pragma once
#include <benchmark/benchmark.h>
#include <cuda_runtime.h>

#include <functional>
#include <string>

namespace qb::cuda {

class l2_flusher {
public:
    l2_flusher();
    ~l2_flusher();
    void flush(cudaStream_t stream); // writes 2x the L2 size: every resident line is evicted
    size_t bytes() const { return bytes_; }

private:
    void *buffer_ = nullptr;
    size_t bytes_ = 0;
};

// Times `launch` once per benchmark iteration with CUDA events; flushes L2 before each launch
// when `cold_l2` (outside the timed region). Reports manual time in seconds.
void time_cuda_iterations(benchmark::State &state, cudaStream_t stream, bool cold_l2, const std::function<void()> &launch);

// Same with a caller-supplied cold-L2 step (run before every timed launch, outside the timed region).
void time_cuda_iterations(benchmark::State &state, cudaStream_t stream, const std::function<void()> &flush,
                          const std::function<void()> &launch);

// Times `launches` back-to-back launches per benchmark iteration, one event pair around the batch,
// and reports the mean time per launch (manual time, seconds): no launch latency between kernels
// and no idle gap, as in a model's sequence of layers. launch(i) runs the i-th launch since the
// start (the caller rotates its weight copies by i so that each launch reads bytes L2 no longer holds).
// graph: capture the batch once as a CUDA graph and replay it, so the host's launch cost (~2-4 us a
// launch) cannot starve the GPU on kernels shorter than that; returns false when the capture failed
// (the batch then ran as direct launches).
bool time_cuda_batches(benchmark::State &state, cudaStream_t stream, int launches, int warmup, const std::function<void(int)> &launch,
                       bool graph = false);

// Adds gpu, driver, sm clocks, L2 policy and the git revision to the benchmark JSON context.
void add_benchmark_context(const std::string &l2_policy);

// Without a CUDA device a benchmark binary has nothing to do: returns its exit code (77 =
// skipped, for `meson test` of `--check`; 1 otherwise) after saying so, or -1 when there is one.
int no_device_exit_code(const char *who, bool check_only);

// Aborts the benchmark binary with a message when a CUDA call fails outside a benchmark.
void check_or_die(cudaError_t err, const char *what);

} // namespace qb::cuda
