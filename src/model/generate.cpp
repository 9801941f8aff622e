#include "model/generate.h"

#include "config.h"
#include "core/error.h"
#include "model/decode_graph.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <chrono>
#include <memory>

#if QBENCH_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace qb {

void synchronize_device(const at::Device &device) {
#if QBENCH_HAVE_CUDA
    if (device.is_cuda()) cudaDeviceSynchronize();
#else
    (void)device;
#endif
}

namespace {

int32_t pick(const at::Tensor &logits_row, const generate_options &o, at::Generator &gen) {
    // logits_row: [vocab] fp32
    if (o.temperature <= 0) return static_cast<int32_t>(logits_row.argmax().item<int64_t>());
    auto probs = at::softmax(logits_row.to(at::kCPU) / o.temperature, -1);
    if (o.top_p < 1.0) {
        auto [sorted, idx] = probs.sort(-1, /*descending=*/true);
        auto cum = sorted.cumsum(-1);
        auto keep = (cum - sorted) < o.top_p; // always keeps the most likely token
        auto filtered = at::zeros_like(probs).scatter(0, idx, sorted * keep.to(sorted.scalar_type()));
        probs = filtered / filtered.sum();
    }
    return static_cast<int32_t>(at::multinomial(probs, 1, false, gen).item<int64_t>());
}

} // namespace

generate_result generate(const llama_model &model, const std::vector<int32_t> &prompt, const generate_options &o,
                         const std::function<void(int32_t)> &on_token) {
    if (prompt.empty()) fail("generate: the prompt has no tokens (add BOS or text)");
    const int64_t total = static_cast<int64_t>(prompt.size()) + o.max_new_tokens;
    if (total > model.config.max_seq_len)
        fail("generate: prompt ({}) + new tokens ({}) exceed the model's context of {}", prompt.size(), o.max_new_tokens,
             model.config.max_seq_len);
    c10::InferenceMode guard;
    at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(o.seed);
    auto cache = model.make_cache(1, total);
    const auto device = model.device();
    generate_result r;
    using clock = std::chrono::steady_clock;

    std::vector<int64_t> ids(prompt.begin(), prompt.end());
    auto input = at::tensor(ids, at::TensorOptions().dtype(at::kLong)).view({1, -1}).to(device);
    synchronize_device(device);
    auto t0 = clock::now();
    auto logits = model.forward(input, &cache); // [1, T, V]
    int32_t next = pick(logits.select(1, logits.size(1) - 1).squeeze(0), o, gen);
    synchronize_device(device);
    r.prefill_ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();

    std::unique_ptr<decode_step_graph> graph;
    if (o.decode_graph && decode_graph_possible(model) && o.max_new_tokens > 1) {
        graph = std::make_unique<decode_step_graph>(model, cache);
        r.used_graph = true;
        r.graph_capture_ms = graph->capture_ms();
        r.graph_kernels = graph->kernels();
    }

    auto t1 = clock::now();
    for (int64_t i = 0; i < o.max_new_tokens; ++i) {
        if (next == o.stop_id) break;
        r.tokens.push_back(next);
        if (on_token) on_token(next);
        if (i + 1 == o.max_new_tokens) break;
        auto step = at::full({1, 1}, static_cast<int64_t>(next), at::TensorOptions().dtype(at::kLong).device(device));
        logits = graph ? graph->step(step) : model.forward(step, &cache);
        ++r.decode_steps;
        next = pick(logits.select(1, 0).squeeze(0), o, gen);
    }
    synchronize_device(device);
    r.decode_ms = std::chrono::duration<double, std::milli>(clock::now() - t1).count();
    return r;
}

} // namespace qb
