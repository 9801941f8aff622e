// Prefill latency of one forward pass: warm-up, then the median of repeated timed passes (with a
// device synchronization around each on CUDA). Keeps every sample in the row.
#include "eval/evaluation.h"

#include "config.h"
#include "core/progress.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <chrono>

#if QBENCH_HAVE_CUDA
#include <cuda_runtime.h>
#endif

namespace qb {
namespace {

void synchronize(const at::Device &device) {
#if QBENCH_HAVE_CUDA
    if (device.is_cuda()) cudaDeviceSynchronize();
#else
    (void)device;
#endif
}

class latency final : public evaluation {
public:
    explicit latency(const json &o) : batch_(o["batch"]), seq_len_(o["seq_len"]), warmup_(o["warmup"]), repeats_(o["repeats"]) {}

    void run(eval_context &ctx) const override {
        c10::InferenceMode inference_mode;
        auto gen = at::make_generator<at::CPUGeneratorImpl>(ctx.cell.seed);
        auto tokens = at::randint(ctx.model.config.vocab_size, {batch_, seq_len_}, gen, at::TensorOptions().dtype(at::kLong))
                          .to(ctx.model.device());
        const auto device = ctx.model.device();
        for (int64_t i = 0; i < warmup_; ++i) ctx.model.forward(tokens);
        synchronize(device);
        std::vector<double> ms;
        progress bar("latency", static_cast<uint64_t>(repeats_), "pass");
        for (int64_t i = 0; i < repeats_; ++i) {
            synchronize(device);
            auto t0 = std::chrono::steady_clock::now();
            auto logits = ctx.model.forward(tokens);
            synchronize(device);
            ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
            bar.advance();
        }
        bar.finish();
        auto sorted = ms;
        std::sort(sorted.begin(), sorted.end());
        auto quantile = [&](double q) { return sorted[static_cast<size_t>(q * double(sorted.size() - 1) + 0.5)]; };
        const double median = quantile(0.5);
        json r = metric_row("latency", "prefill_ms", median, "ms");
        r["statistic"] = "median";
        r["p10_ms"] = quantile(0.1);
        r["p90_ms"] = quantile(0.9);
        r["samples_ms"] = ms;
        r["batch"] = batch_;
        r["seq_len"] = seq_len_;
        r["threads"] = at::get_num_threads();
        ctx.record.add_metric(r);
        json t = metric_row("latency", "prefill_tokens_per_s", double(batch_ * seq_len_) / (median / 1000.0), "tokens/s");
        t["statistic"] = "from the median pass";
        ctx.record.add_metric(t);
    }

private:
    int64_t batch_, seq_len_, warmup_, repeats_;
};

} // namespace

std::unique_ptr<evaluation> make_latency_evaluation(const json &options) { return std::make_unique<latency>(options); }

} // namespace qb
