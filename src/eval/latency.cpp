// Prefill and decode latency: warm-up passes, then the medians of repeated timed passes (with a
// device synchronization around each timed span on CUDA). Keeps every sample in the row. Decode
// steps run eagerly or as one CUDA graph of the step replayed per token (option decode): at batch
// 1 eager decode measures LibTorch's host-side dispatch more than the GPU.
#include "eval/evaluation.h"

#include "config.h"
#include "core/error.h"
#include "core/progress.h"
#include "model/decode_graph.h"
#include "model/generate.h"
#include "model/step_kernels.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>


namespace qb {
namespace {

struct sample_stats {
    std::vector<double> samples;
    double quantile(double q) const {
        auto sorted = samples;
        std::sort(sorted.begin(), sorted.end());
        return sorted[static_cast<size_t>(q * double(sorted.size() - 1) + 0.5)];
    }
};

class latency final : public evaluation {
public:
    explicit latency(const json &o)
        : batch_(o["batch"]), seq_len_(o["seq_len"]), new_tokens_(o["new_tokens"]), warmup_(o["warmup"]), repeats_(o["repeats"]),
          decode_(o["decode"].get<std::string>()), step_kernels_(o["step_kernels"].get<std::string>()) {}

    status supports(const eval_context &ctx) const override {
        if (decode_ == "graph" && new_tokens_ > 0 && !decode_graph_possible(ctx.model))
            return status::failure(status_code::unsupported_option,
                                   fmt::format("latency: decode: graph needs a CUDA model in a CUDA build (the model is on {}{}); decode: eager or auto "
                                               "runs the steps one by one",
                                               ctx.model.device().str(), decode_graphs_available() ? "" : ", qbench built without CUDA"));
        if (step_kernels_ == "fused" && new_tokens_ > 0) {
            if (!uses_graph(ctx.model))
                return status::failure(status_code::unsupported_option,
                                       "latency: step_kernels: fused are the decode graph's (its steps run forward_step); eager steps run forward(), "
                                       "operation by operation; decode: graph or step_kernels: auto");
            if (auto why = fused_step_attention_unsupported(ctx.model); !why.empty())
                return status::failure(status_code::unsupported_option, "latency: step_kernels: fused: " + why + "; step_kernels: aten or auto");
        }
        return status::success();
    }

    void run(eval_context &ctx) const override {
        c10::InferenceMode inference_mode;
        const auto &model = ctx.model;
        if (seq_len_ + new_tokens_ > model.config.max_seq_len)
            fail("latency: seq_len {} + new_tokens {} exceed the model's max_seq_len {}", seq_len_, new_tokens_, model.config.max_seq_len);
        auto gen = at::make_generator<at::CPUGeneratorImpl>(ctx.cell.seed);
        const auto opts = at::TensorOptions().dtype(at::kLong);
        auto prompt = at::randint(model.config.vocab_size, {batch_, seq_len_}, gen, opts).to(model.device());
        auto next = at::randint(model.config.vocab_size, {batch_, std::max<int64_t>(new_tokens_, 1)}, gen, opts).to(model.device());
        const auto device = model.device();

        const bool use_graph = uses_graph(model);
        const bool fused = step_kernels_ != "aten";
        // One cache for every pass (each prefill refills it from position 0), so that the decode
        // graph, which keeps the cache's tensors, serves all of them; captured once, untimed.
        auto cache = model.make_cache(batch_, seq_len_ + new_tokens_);
        std::unique_ptr<decode_step_graph> graph;
        if (use_graph && new_tokens_ > 0) graph = std::make_unique<decode_step_graph>(model, cache, fused);

        // One pass = prefill the prompt into the cache, then `new_tokens` single-token steps
        // (their inputs are fixed random ids: the cost of a step does not depend on which token).
        sample_stats prefill, decode;
        auto one_pass = [&](bool record) {
            cache.length = 0;
            synchronize_device(device);
            auto t0 = std::chrono::steady_clock::now();
            model.forward(prompt, &cache);
            synchronize_device(device);
            auto t1 = std::chrono::steady_clock::now();
            for (int64_t i = 0; i < new_tokens_; ++i) {
                if (graph)
                    graph->step(next.narrow(1, i, 1));
                else
                    model.forward(next.narrow(1, i, 1), &cache);
            }
            synchronize_device(device);
            auto t2 = std::chrono::steady_clock::now();
            if (!record) return;
            prefill.samples.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
            if (new_tokens_ > 0)
                decode.samples.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count() / double(new_tokens_));
        };
        for (int64_t i = 0; i < warmup_; ++i) one_pass(false);
        progress bar("latency", static_cast<uint64_t>(repeats_), "pass");
        for (int64_t i = 0; i < repeats_; ++i) {
            one_pass(true);
            bar.advance();
        }
        bar.finish();

        auto describe = [&](json r, const sample_stats &s, const char *unit_name) {
            r["statistic"] = "median";
            r[std::string("p10_") + unit_name] = s.quantile(0.1);
            r[std::string("p90_") + unit_name] = s.quantile(0.9);
            r[std::string("samples_") + unit_name] = s.samples;
            r["batch"] = batch_;
            r["seq_len"] = seq_len_;
            r["new_tokens"] = new_tokens_;
            r["threads"] = at::get_num_threads();
            r["timing"] = device.is_cuda() ? "wall clock, device synchronized before and after" : "wall clock";
            return r;
        };
        const double p = prefill.quantile(0.5);
        ctx.record.add_metric(describe(metric_row("latency", "prefill_ms", p, "ms"), prefill, "ms"));
        json pt = metric_row("latency", "prefill_tokens_per_s", double(batch_ * seq_len_) / (p / 1000.0), "tokens/s");
        pt["statistic"] = "from the median prefill";
        ctx.record.add_metric(pt);
        if (new_tokens_ > 0) {
            const double d = decode.quantile(0.5);
            json row = describe(metric_row("latency", "decode_ms_per_token", d, "ms"), decode, "ms");
            row["decode"] = graph ? "cuda graph: one decode step captured once, replayed per token" : "eager: operation by operation";
            row["step_kernels"] = graph ? step_kernels_description(model, fused) : "aten: forward() with the KV cache, operation by operation";
            if (graph) {
                row["graph_capture_ms"] = graph->capture_ms();
                row["graph_nodes"] = graph->nodes();
                row["graph_kernels"] = graph->kernels();
                row["graph_node_types"] = graph->node_types();
            }
            ctx.record.add_metric(row);
            json dt = metric_row("latency", "decode_tokens_per_s", double(batch_) / (d / 1000.0), "tokens/s");
            dt["statistic"] = "from the median decode step (batch tokens per step)";
            ctx.record.add_metric(dt);
        }
    }

private:
    // decode: auto takes the graph where one can be captured (a CUDA model in a CUDA build).
    bool uses_graph(const llama_model &model) const { return decode_ == "graph" || (decode_ == "auto" && decode_graph_possible(model)); }

    int64_t batch_, seq_len_, new_tokens_, warmup_, repeats_;
    std::string decode_, step_kernels_;
};

} // namespace

std::unique_ptr<evaluation> make_latency_evaluation(const json &options) { return std::make_unique<latency>(options); }

} // namespace qb
