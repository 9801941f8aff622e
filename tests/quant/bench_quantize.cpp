// Quantize-and-pack throughput (Google Benchmark): how long `qbench quantize` takes for a
// LLaMA-2-7B-shaped model, through the real code path (the registered flexq quantizer, then
// write_packed_checkpoint to a file), with the fp16 weights created directly on the GPU (no 27 GB
// fp32 CPU detour). Counters: bits per linear weight, GB written, seconds per phase.
//
//   build/tests/quant/bench_quantize                                   # everything (GPU cases skip without CUDA)
//   build/tests/quant/bench_quantize --benchmark_filter=llama2_7b      # the H100 figure
//   QBENCH_BENCH_DIR=/path build/tests/quant/bench_quantize            # where the .qbq goes (default: temp dir; removed after)
#include "core/error.h"
#include "core/paths.h"
#include "quant/calibration.h"
#include "quant/packed_checkpoint.h"
#include "quant/quantizer.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <c10/core/InferenceMode.h>
#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>

using namespace qb;

namespace {

namespace fs = std::filesystem;

llama_config llama2_7b_shape() {
    llama_config c = llama_config_find("llama-2-7b", config_dir()); // configs/models/llama-2-7b.yaml
    c.name = "llama-2-7b-shaped";
    return c;
}

llama_config small_shape() {
    llama_config c = llama2_7b_shape();
    c.name = "small";
    c.dim = 512;
    c.hidden_dim = 1536;
    c.n_layers = 4;
    c.n_heads = 8;
    c.n_kv_heads = 8;
    c.vocab_size = 4096;
    c.max_seq_len = 1024;
    return c;
}

// Random weights made where the model runs (on a GPU: no host memory, no transfer), N(0, 1/fan_in)
// like llama_make_synthetic. The values do not matter for the timing; the shapes do.
llama_model make_model(const llama_config &c, at::Device device, at::ScalarType dtype) {
    auto opts = at::TensorOptions().device(device).dtype(dtype);
    auto matrix = [&](int64_t n, int64_t k) { return at::randn({n, k}, opts) * (1.0 / std::sqrt(double(k))); };
    llama_model m;
    m.config = c;
    m.tok_embeddings = at::randn({c.vocab_size, c.dim}, opts);
    m.final_norm = at::ones({c.dim}, opts);
    m.lm_head = matrix(c.vocab_size, c.dim);
    const char *names[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"};
    for (int64_t i = 0; i < c.n_layers; ++i) {
        decoder_layer d;
        d.attn_norm = at::ones({c.dim}, opts);
        d.ffn_norm = at::ones({c.dim}, opts);
        linear_layer *slots[] = {&d.q_proj, &d.k_proj, &d.v_proj, &d.o_proj, &d.gate_proj, &d.up_proj, &d.down_proj};
        const int64_t shapes[7][2] = {{c.dim, c.dim}, {c.kv_dim(), c.dim}, {c.kv_dim(), c.dim}, {c.dim, c.dim},
                                      {c.hidden_dim, c.dim}, {c.hidden_dim, c.dim}, {c.dim, c.hidden_dim}};
        for (int j = 0; j < 7; ++j) {
            slots[j]->name = "layers." + std::to_string(i) + "." + names[j];
            slots[j]->weight = matrix(shapes[j][0], shapes[j][1]);
        }
        m.layers.push_back(std::move(d));
    }
    m.prepare_rope();
    return m;
}

void sync(at::Device d) {
    if (d.is_cuda()) at::empty({1}, at::TensorOptions().device(d)).cpu();
}

double since(std::chrono::steady_clock::time_point t) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

fs::path bench_dir() {
    if (const char *e = std::getenv("QBENCH_BENCH_DIR"); e && *e) return e;
    return fs::temp_directory_path();
}

// One iteration: a fresh shallow copy quantized by `method`, then packed and written.
void quantize_and_pack(benchmark::State &state, const llama_config &shape, at::Device device, const std::string &method,
                       const json &options) {
    if (device.is_cuda() && !at::globalContext().hasCUDA()) {
        state.SkipWithError("no CUDA device (this benchmark needs the GPU machine)");
        return;
    }
    c10::InferenceMode guard;
    const llama_model base = make_model(shape, device, at::kHalf);
    sync(device);
    const fs::path file = bench_dir() / ("qbench-bench-" + shape.name + ".qbq");
    double quant_s = 0, pack_s = 0, bpw = 0, gb = 0;
    for (auto _ : state) {
        llama_model m = base;
        const auto t0 = std::chrono::steady_clock::now();
        quantizers().get(method).create(options)->apply(m);
        sync(device);
        quant_s = since(t0);
        const auto t1 = std::chrono::steady_clock::now();
        const auto summary = write_packed_checkpoint(file, m, {{"method", method}, {"options", options}, {"source", "benchmark"}});
        pack_s = since(t1);
        bpw = summary.bits_per_linear_weight();
        gb = double(summary.file_bytes) / 1e9;
        state.SetIterationTime(quant_s + pack_s);
    }
    fs::remove(file);
    state.counters["quantize_s"] = quant_s;
    state.counters["pack_write_s"] = pack_s;
    state.counters["bits_per_weight"] = bpw;
    state.counters["GB_written"] = gb;
    state.SetLabel(fmt::format("{} {} {}: {:.4f} bits/linear weight, {:.3f} GB file", shape.name, device.str(), method, bpw, gb));
}

const json paper = {{"selection", "paper"}};
// The sensitivity analysis on random tokens (the synthetic model has no text): 8 windows of 512.
const json sensitivity = {{"selection", "sensitivity"}, {"calib_windows", 8}, {"calib_seq_len", 512}, {"calib_batch", 4}};

void BM_llama2_7b_flexq_paper_cuda(benchmark::State &s) { quantize_and_pack(s, llama2_7b_shape(), at::Device(at::kCUDA, 0), "flexq", paper); }
void BM_llama2_7b_flexq_sensitivity_cuda(benchmark::State &s) {
    quantize_and_pack(s, llama2_7b_shape(), at::Device(at::kCUDA, 0), "flexq", sensitivity);
}
void BM_small_flexq_paper_cpu(benchmark::State &s) { quantize_and_pack(s, small_shape(), at::kCPU, "flexq", paper); }
void BM_small_rtn_w4_asym_cpu(benchmark::State &s) {
    quantize_and_pack(s, small_shape(), at::kCPU, "rtn", {{"w_bits", 4}, {"group_size", 128}, {"symmetric", false}});
}

} // namespace

BENCHMARK(BM_llama2_7b_flexq_paper_cuda)->UseManualTime()->Unit(benchmark::kSecond)->Iterations(2);
BENCHMARK(BM_llama2_7b_flexq_sensitivity_cuda)->UseManualTime()->Unit(benchmark::kSecond)->Iterations(1);
BENCHMARK(BM_small_flexq_paper_cpu)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3);
BENCHMARK(BM_small_rtn_w4_asym_cpu)->UseManualTime()->Unit(benchmark::kMillisecond)->Iterations(3);

BENCHMARK_MAIN();
