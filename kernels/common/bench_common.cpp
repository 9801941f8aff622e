// Benchmarks of the reference pieces in kernels/common: cuBLAS fp16 GEMM (TN, fp32 accumulate)
// and the naive int8 reference kernel, on LLaMA-7B layer shapes at decode batch sizes, cold L2.
// The fp16 cuBLAS row is the "unit of measurement" later kernels are compared against.
//
//   build/kernels/common/bench_common --benchmark_out=bench.json --benchmark_repetitions=5
//   build/kernels/common/bench_common --check   (verifies the kernels once, times nothing)
#include "common/bench_util.h"
#include "common/gemm_ref.h"

#include <cublas_v2.h>
#include <cuda_fp16.h>

#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

namespace {

using qb::cuda::check_or_die;

struct shape { int n, k; const char *name; };
const shape shapes[] = {{12288, 4096, "llama-7b.qkv"}, {4096, 4096, "llama-7b.o"}, {11008, 4096, "llama-7b.up"}, {4096, 11008, "llama-7b.down"}};
const int batch_sizes[] = {1, 8, 128};

template <class T>
T *device_random(size_t count, int lo, int hi, unsigned seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int> dist(lo, hi);
    std::vector<T> host(count);
    for (auto &x : host) {
        int v = dist(rng);
        if (v == 0) v = 1; // never zeros: a kernel that writes nothing must not pass
        if constexpr (std::is_same_v<T, __half>) x = __float2half(float(v) / 8.0f);
        else x = static_cast<T>(v);
    }
    T *dev = nullptr;
    check_or_die(cudaMalloc(&dev, count * sizeof(T)), "cudaMalloc");
    check_or_die(cudaMemcpy(dev, host.data(), count * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy");
    return dev;
}

void bench_cublas_f16(benchmark::State &state, int m, int n, int k) {
    cublasHandle_t handle;
    if (cublasCreate(&handle) != CUBLAS_STATUS_SUCCESS) { state.SkipWithError("cublasCreate failed"); return; }
    auto *a = device_random<__half>(size_t(m) * k, -8, 8, 1);
    auto *b = device_random<__half>(size_t(n) * k, -8, 8, 2);
    __half *c = nullptr;
    check_or_die(cudaMalloc(&c, size_t(m) * n * sizeof(__half)), "cudaMalloc");
    const float alpha = 1.f, beta = 0.f;
    // Row-major C[m,n] = A[m,k] B[n,k]^T is column-major C^T[n,m] = B^T... : op(B)=T on the [k,n] view.
    auto launch = [&] {
        auto st = cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, b, CUDA_R_16F, k, a, CUDA_R_16F, k, &beta, c,
                               CUDA_R_16F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
        if (st != CUBLAS_STATUS_SUCCESS) state.SkipWithError("cublasGemmEx failed");
    };
    qb::cuda::time_cuda_iterations(state, nullptr, true, launch);
    const double bytes = 2.0 * (double(n) * k + double(m) * k + double(m) * n); // weights + activations + output, fp16
    state.counters["TB"] = benchmark::Counter(bytes / 1e12, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["TFLOP"] = benchmark::Counter(2.0 * m * n * k / 1e12, benchmark::Counter::kIsIterationInvariantRate);
    cudaFree(a); cudaFree(b); cudaFree(c);
    cublasDestroy(handle);
}

void bench_s8_ref(benchmark::State &state, int m, int n, int k) {
    auto *a = device_random<int8_t>(size_t(m) * k, -128, 127, 3);
    auto *b = device_random<int8_t>(size_t(n) * k, -128, 127, 4);
    int32_t *c = nullptr;
    check_or_die(cudaMalloc(&c, size_t(m) * n * sizeof(int32_t)), "cudaMalloc");
    auto launch = [&] {
        auto st = qb::cuda::gemm_s8s8_s32_tn_ref(m, n, k, a, b, c, nullptr);
        if (!st.ok()) state.SkipWithError(st.reason.c_str());
    };
    qb::cuda::time_cuda_iterations(state, nullptr, true, launch);
    const double bytes = double(n) * k + double(m) * k + 4.0 * m * n;
    state.counters["TB"] = benchmark::Counter(bytes / 1e12, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["TOP"] = benchmark::Counter(2.0 * m * n * k / 1e12, benchmark::Counter::kIsIterationInvariantRate);
    cudaFree(a); cudaFree(b); cudaFree(c);
}

} // namespace

int main(int argc, char **argv) {
    bool check_only = false;
    for (int i = 1; i < argc; ++i)
        if (std::strcmp(argv[i], "--check") == 0) check_only = true;
    if (const int rc = qb::cuda::no_device_exit_code("bench_common", check_only); rc >= 0) return rc;
    if (check_only) {
        // One small product through both kernels, compared on the host: a benchmark that times
        // a wrong kernel is worse than none.
        const int m = 3, n = 70, k = 96;
        std::vector<int8_t> ha(m * k), hb(n * k);
        std::mt19937 rng(7);
        for (auto &x : ha) x = int8_t(int(rng() % 255) - 127);
        for (auto &x : hb) x = int8_t(int(rng() % 255) - 127);
        int8_t *a, *b; int32_t *c;
        check_or_die(cudaMalloc(&a, ha.size()), "malloc"); check_or_die(cudaMalloc(&b, hb.size()), "malloc");
        check_or_die(cudaMalloc(&c, m * n * 4), "malloc");
        cudaMemcpy(a, ha.data(), ha.size(), cudaMemcpyHostToDevice);
        cudaMemcpy(b, hb.data(), hb.size(), cudaMemcpyHostToDevice);
        auto st = qb::cuda::gemm_s8s8_s32_tn_ref(m, n, k, a, b, c, nullptr);
        if (!st.ok()) { std::fprintf(stderr, "%s\n", st.reason.c_str()); return 1; }
        std::vector<int32_t> hc(m * n);
        check_or_die(cudaMemcpy(hc.data(), c, hc.size() * 4, cudaMemcpyDeviceToHost), "copy back");
        for (int i = 0; i < m; ++i)
            for (int j = 0; j < n; ++j) {
                long long ref = 0;
                for (int x = 0; x < k; ++x) ref += ha[i * k + x] * hb[j * k + x];
                if (ref != hc[i * n + j]) { std::fprintf(stderr, "mismatch at (%d,%d): %d vs %lld\n", i, j, hc[i * n + j], ref); return 1; }
            }
        std::printf("bench_common --check: reference s8 kernel matches the host on %dx%dx%d\n", m, n, k);
        return 0;
    }
    qb::cuda::add_benchmark_context("cold: 2x L2 memset before every timed launch");
    for (const auto &s : shapes)
        for (int m : batch_sizes) {
            benchmark::RegisterBenchmark((std::string("cublas_f16/") + s.name).c_str(), bench_cublas_f16, m, s.n, s.k)
                ->Args({m, s.n, s.k})->ArgNames({"m", "n", "k"})->UseManualTime()->Unit(benchmark::kMicrosecond);
            benchmark::RegisterBenchmark((std::string("s8_ref/") + s.name).c_str(), bench_s8_ref, m, s.n, s.k)
                ->Args({m, s.n, s.k})->ArgNames({"m", "n", "k"})->UseManualTime()->Unit(benchmark::kMicrosecond);
        }
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
