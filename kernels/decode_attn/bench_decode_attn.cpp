// Benchmark of the fused decode attention (decode_attn.h): one layer's attention for one new token,
// at the positions a decode reaches, on the head layouts of the models qbench runs. Cold L2 (a 2x L2
// memset before every timed launch): in a model, a layer's cache was last touched a whole step ago.
// Reported: us, the bytes the step must read (keys and values of positions 0..pos, plus q, k, v and
// the output) per second, and that rate as a share of 3.0 TB/s (the W6 tables' roofline bandwidth).
//
//   build/kernels/decode_attn/bench_decode_attn --benchmark_out=attn.json --benchmark_repetitions=5
//   build/kernels/decode_attn/bench_decode_attn --check   (every configuration once, outputs finite)
#include "common/bench_util.h"
#include "decode_attn/decode_attn.h"

#include <cuda_fp16.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

using qb::attn::decode_attn_args;
using qb::cuda::check_or_die;

struct layout {
    const char *name;
    int heads, kv_heads, head_dim, batch;
};
const layout layouts[] = {
    {"llama-2-7b", 32, 32, 128, 1},
    {"llama-2-7b.b8", 32, 32, 128, 8},
    {"llama-2-70b", 64, 8, 128, 1},
    {"llama-3-8b", 32, 8, 128, 1}, // groups of 4 at D = 128 (Mistral-7B's heads too)
    {"smollm2-135m", 9, 3, 64, 1},
};
const int positions[] = {127, 511, 2047, 4095};
constexpr int capacity = 4096;
constexpr double roofline_tbps = 3.0;

// Device buffers of one configuration, filled with finite fp16 values (never zero).
struct problem {
    std::vector<void *> allocations;
    decode_attn_args args;
    size_t out_count = 0;

    template <class T>
    T *alloc(size_t count) {
        void *p = nullptr;
        check_or_die(cudaMalloc(&p, std::max<size_t>(count, 1) * sizeof(T)), "cudaMalloc");
        allocations.push_back(p);
        return static_cast<T *>(p);
    }
    __half *halves(size_t count, float amp) {
        std::vector<__half> h(count);
        for (size_t i = 0; i < count; ++i) h[i] = __float2half(amp * (float((i * 2654435761u) % 2001) / 1000.f - 1.f) + 1e-3f);
        auto *d = alloc<__half>(count);
        check_or_die(cudaMemcpy(d, h.data(), count * sizeof(__half), cudaMemcpyHostToDevice), "cudaMemcpy");
        return d;
    }
    problem(const layout &l, int pos) {
        const size_t d = l.head_dim, cache = size_t(l.batch) * l.kv_heads * capacity * d;
        args.q = halves(l.batch * l.heads * d, 2.f);
        args.k = halves(l.batch * l.kv_heads * d, 2.f);
        args.v = halves(l.batch * l.kv_heads * d, 2.f);
        args.q_stride = l.heads * d, args.k_stride = args.v_stride = l.kv_heads * d;
        args.cache_k = halves(cache, 2.f), args.cache_v = halves(cache, 2.f);
        std::vector<float> table(size_t(capacity) * d / 2);
        for (size_t i = 0; i < table.size(); ++i) table[i] = std::cos(0.001f * float(i));
        auto *cos = alloc<float>(table.size()), *sin = alloc<float>(table.size());
        check_or_die(cudaMemcpy(cos, table.data(), table.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy");
        check_or_die(cudaMemcpy(sin, table.data(), table.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy");
        args.rope_cos = cos, args.rope_sin = sin, args.rope_rows = capacity;
        auto *p = alloc<int64_t>(1);
        const int64_t p64 = pos;
        check_or_die(cudaMemcpy(p, &p64, 8, cudaMemcpyHostToDevice), "cudaMemcpy");
        args.pos = p;
        args.batch = l.batch, args.heads = l.heads, args.kv_heads = l.kv_heads, args.head_dim = l.head_dim, args.capacity = capacity;
        out_count = size_t(l.batch) * l.heads * d;
        args.out = alloc<__half>(out_count);
        const size_t scratch = qb::attn::decode_attn_scratch_bytes(l.batch, l.heads, l.kv_heads, l.head_dim, capacity);
        args.scratch = alloc<unsigned char>(scratch);
        check_or_die(cudaMemset(args.scratch, 0, scratch), "cudaMemset");
    }
    ~problem() {
        for (void *p : allocations) cudaFree(p);
    }
};

// Bytes one launch must move at least: keys and values of positions 0..pos, q, k, v read, the new
// key and value and the output written.
double bytes_moved(const layout &l, int pos) {
    const double row = 2.0 * l.head_dim;
    return double(l.batch) * (2.0 * l.kv_heads * (pos + 1) * row + (l.heads + 2.0 * l.kv_heads) * row + 2.0 * l.kv_heads * row + l.heads * row);
}

void bench_attn(benchmark::State &state, layout l, int pos) {
    problem p(l, pos);
    qb::cuda::time_cuda_iterations(state, nullptr, true, [&] {
        const auto st = qb::attn::decode_attention(p.args, nullptr);
        if (!st.ok()) state.SkipWithError(st.reason.c_str());
    });
    const double bytes = bytes_moved(l, pos);
    state.counters["TBps"] = benchmark::Counter(bytes / 1e12, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["bytes"] = bytes;
    // roofline_pct = 100 * (bytes / 3.0 TB/s) / time: computed from the JSON's real_time by the reader.
}

int check() {
    for (const auto &l : layouts)
        for (int pos : positions) {
            problem p(l, pos);
            if (const auto st = qb::attn::decode_attention(p.args, nullptr); !st.ok()) {
                std::fprintf(stderr, "%s pos=%d: %s\n", l.name, pos, st.reason.c_str());
                return 1;
            }
            std::vector<__half> out(p.out_count);
            check_or_die(cudaMemcpy(out.data(), p.args.out, out.size() * 2, cudaMemcpyDeviceToHost), "copy back");
            for (const auto &h : out)
                if (!std::isfinite(__half2float(h))) {
                    std::fprintf(stderr, "%s pos=%d: a non-finite output\n", l.name, pos);
                    return 1;
                }
        }
    std::printf("bench_decode_attn --check: every configuration launched and gave finite outputs (correctness: tests/kernels/decode_attn)\n");
    return 0;
}

} // namespace

int main(int argc, char **argv) {
    bool check_only = false;
    for (int i = 1; i < argc; ++i)
        if (std::strcmp(argv[i], "--check") == 0) check_only = true;
    if (const int rc = qb::cuda::no_device_exit_code("bench_decode_attn", check_only); rc >= 0) return rc;
    if (check_only) return check();
    qb::cuda::add_benchmark_context("cold: 2x L2 memset before every timed launch");
    benchmark::AddCustomContext("roofline_tbps", std::to_string(roofline_tbps));
    for (const auto &l : layouts)
        for (int pos : positions)
            benchmark::RegisterBenchmark((std::string("decode_attn/") + l.name).c_str(), bench_attn, l, pos)
                ->Args({pos, capacity})
                ->ArgNames({"pos", "capacity"})
                ->UseManualTime()
                // Fixed: left to Google Benchmark, a 10-40 us launch ran until 0.5 s of timed launches,
                // i.e. ~50,000 2x-L2 memsets and syncs per repetition, ~13 s a row (session 32's
                // H100 run spent 150 s on 11 rows). 300 launches a repetition; the cv rows show the spread.
                ->Iterations(300)
                ->Unit(benchmark::kMicrosecond);
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
