#include "common/bench_util.h"

#include "build_info.h"
#include "common/device_info.h"

#include <cstdio>
#include <cstdlib>
#include <string>

namespace qb::cuda {

void check_or_die(cudaError_t err, const char *what) {
    if (err == cudaSuccess) return;
    std::fprintf(stderr, "CUDA error in %s: %s\n", what, cudaGetErrorString(err));
    std::exit(1);
}

int no_device_exit_code(const char *who, bool check_only) {
    int devices = 0;
    if (cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0) return -1;
    std::fprintf(stderr, "%s: no CUDA device; nothing to benchmark\n", who);
    return check_only ? 77 : 1;
}

l2_flusher::l2_flusher() {
    int device = 0, l2 = 0;
    check_or_die(cudaGetDevice(&device), "cudaGetDevice");
    check_or_die(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device), "L2 size");
    bytes_ = static_cast<size_t>(l2) * 2;
    check_or_die(cudaMalloc(&buffer_, bytes_), "cudaMalloc(L2 flush buffer)");
}

l2_flusher::~l2_flusher() { cudaFree(buffer_); }

void l2_flusher::flush(cudaStream_t stream) { check_or_die(cudaMemsetAsync(buffer_, 0, bytes_, stream), "L2 flush"); }

void time_cuda_iterations(benchmark::State &state, cudaStream_t stream, bool cold_l2, const std::function<void()> &launch) {
    static l2_flusher *flusher = new l2_flusher(); // one per process, never freed before exit
    time_cuda_iterations(state, stream, cold_l2 ? std::function<void()>([&] { flusher->flush(stream); }) : std::function<void()>(), launch);
}

namespace {

// One CUDA event pair: the seconds between the start of what `enqueue` queues on the stream and
// its end, checked for launch errors; both timing loops below use it.
class event_timer {
public:
    event_timer() {
        check_or_die(cudaEventCreate(&start_), "cudaEventCreate");
        check_or_die(cudaEventCreate(&stop_), "cudaEventCreate");
    }
    ~event_timer() {
        cudaEventDestroy(start_);
        cudaEventDestroy(stop_);
    }
    event_timer(const event_timer &) = delete;
    event_timer &operator=(const event_timer &) = delete;
    double seconds(cudaStream_t stream, const std::function<void()> &enqueue) {
        check_or_die(cudaEventRecord(start_, stream), "cudaEventRecord");
        enqueue();
        check_or_die(cudaEventRecord(stop_, stream), "cudaEventRecord");
        check_or_die(cudaEventSynchronize(stop_), "cudaEventSynchronize");
        check_or_die(cudaGetLastError(), "kernel launch");
        float ms = 0;
        check_or_die(cudaEventElapsedTime(&ms, start_, stop_), "cudaEventElapsedTime");
        return double(ms) / 1e3;
    }

private:
    cudaEvent_t start_ = nullptr, stop_ = nullptr;
};

} // namespace

void time_cuda_iterations(benchmark::State &state, cudaStream_t stream, const std::function<void()> &flush,
                          const std::function<void()> &launch) {
    event_timer timer;
    for (int i = 0; i < 3; ++i) launch(); // warm-up: module load, clocks, cuBLAS heuristics
    check_or_die(cudaStreamSynchronize(stream), "warm-up");
    for (auto _ : state) {
        if (flush) flush();
        state.SetIterationTime(timer.seconds(stream, launch));
    }
}

bool time_cuda_batches(benchmark::State &state, cudaStream_t stream, int launches, int warmup, const std::function<void(int)> &launch,
                       bool graph) {
    event_timer timer;
    int next = 0;
    for (int i = 0; i < warmup; ++i) launch(next++);
    check_or_die(cudaStreamSynchronize(stream), "warm-up");
    cudaGraphExec_t exec = nullptr;
    if (graph) {
        // The batch is captured once, launch indices next .. next + launches - 1; callers rotate
        // their copies modulo a divisor of `launches`, so every replay reads the same sequence.
        cudaGraph_t g = nullptr;
        bool ok = cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal) == cudaSuccess;
        if (ok) {
            for (int i = 0; i < launches; ++i) launch(next + i);
            ok = cudaStreamEndCapture(stream, &g) == cudaSuccess && g;
        }
        ok = ok && cudaGraphInstantiate(&exec, g, 0) == cudaSuccess;
        if (g) cudaGraphDestroy(g);
        if (ok) ok = cudaGraphLaunch(exec, stream) == cudaSuccess && cudaStreamSynchronize(stream) == cudaSuccess;
        if (!ok) {
            if (exec) cudaGraphExecDestroy(exec);
            exec = nullptr;
        }
        cudaGetLastError(); // a failed capture leaves its error behind; the direct launches below report their own
    }
    const std::function<void()> batch = [&] {
        if (exec) check_or_die(cudaGraphLaunch(exec, stream), "cudaGraphLaunch");
        else
            for (int i = 0; i < launches; ++i) launch(next++);
    };
    for (auto _ : state) state.SetIterationTime(timer.seconds(stream, batch) / launches);
    state.counters["launches_per_batch"] = launches;
    const bool graphed = exec != nullptr;
    if (exec) cudaGraphExecDestroy(exec);
    return graphed || !graph;
}

void add_benchmark_context(const std::string &l2_policy) {
    auto env = query_cuda_environment();
    benchmark::AddCustomContext("qbench_git", QBENCH_GIT_DESCRIBE);
    if (const char *dirty = std::getenv("QBENCH_GIT_DIRTY")) benchmark::AddCustomContext("qbench_git_dirty", dirty);
    benchmark::AddCustomContext("l2_policy", l2_policy);
    benchmark::AddCustomContext("cuda_runtime", std::to_string(env.runtime_version));
    benchmark::AddCustomContext("cublas", std::to_string(env.cublas_version));
    if (env.gpus.empty()) {
        benchmark::AddCustomContext("gpu", "none: " + env.error);
        return;
    }
    const auto &g = env.gpus.front();
    benchmark::AddCustomContext("gpu", g.name);
    benchmark::AddCustomContext("gpu_uuid", g.uuid);
    benchmark::AddCustomContext("gpu_sm", std::to_string(g.cc_major) + "." + std::to_string(g.cc_minor));
    benchmark::AddCustomContext("gpu_sm_count", std::to_string(g.sm_count));
    benchmark::AddCustomContext("gpu_l2_bytes", std::to_string(g.l2_bytes));
    benchmark::AddCustomContext("driver", g.driver);
    benchmark::AddCustomContext("sm_clock_mhz", std::to_string(g.sm_clock_mhz));
    benchmark::AddCustomContext("sm_clock_max_mhz", std::to_string(g.sm_clock_max_mhz));
    benchmark::AddCustomContext("mem_clock_mhz", std::to_string(g.mem_clock_mhz));
}

} // namespace qb::cuda
