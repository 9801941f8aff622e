// KL divergence of the model under test from its unquantized base, per token position, on a
// seeded stream of random token ids (the only honest text a synthetic model has; real corpora
// come with the perplexity evaluations). Reports mean ± stderr, p99, max, and top-1 agreement.
#include "eval/evaluation.h"

#include "core/error.h"
#include "core/progress.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <cmath>

namespace qb {
namespace {

class kl_divergence final : public evaluation {
public:
    explicit kl_divergence(const json &o) : sequences_(o["sequences"]), seq_len_(o["seq_len"]) {}

    void run(eval_context &ctx) const override {
        const auto &cfg = ctx.model.config;
        if (seq_len_ > cfg.max_seq_len)
            fail("kl_divergence: seq_len {} exceeds the model's max_seq_len {}", seq_len_, cfg.max_seq_len);
        auto gen = at::make_generator<at::CPUGeneratorImpl>(ctx.cell.seed);
        std::vector<at::Tensor> kld_parts, agree_parts;
        progress bar("kl_divergence", static_cast<uint64_t>(sequences_), "seq");
        c10::InferenceMode inference_mode;
        for (int64_t s = 0; s < sequences_; ++s) {
            auto tokens = at::randint(cfg.vocab_size, {1, seq_len_}, gen, at::TensorOptions().dtype(at::kLong));
            auto lp_base = at::log_softmax(ctx.base.forward(tokens), -1);  // [1, T, V] fp32
            auto lp_test = at::log_softmax(ctx.model.forward(tokens), -1); // [1, T, V]
            auto kld = (lp_base.exp() * (lp_base - lp_test)).sum(-1).flatten().to(at::kDouble).cpu(); // [T]
            auto agree = (lp_base.argmax(-1) == lp_test.argmax(-1)).flatten().to(at::kDouble).cpu();
            kld_parts.push_back(kld);
            agree_parts.push_back(agree);
            bar.advance();
        }
        bar.finish();
        auto kld = at::cat(kld_parts).clamp_min(0.0); // rounding can give -1e-9 for identical models
        auto agree = at::cat(agree_parts);
        const double n = double(kld.numel());
        const double mean = kld.mean().item<double>();
        const double stderr_ = n > 1 ? kld.std().item<double>() / std::sqrt(n) : 0.0;
        const double p_agree = agree.mean().item<double>();
        auto row = [&](const std::string &metric, double value, const std::string &unit) {
            json r = metric_row("kl_divergence", metric, value, unit);
            r["n_positions"] = static_cast<int64_t>(n);
            r["tokens"] = "uniform random ids, seed " + std::to_string(ctx.cell.seed);
            return r;
        };
        json mean_row = row("kld_mean", mean, "nats");
        mean_row["stderr"] = stderr_;
        // Positions within a sequence are correlated, so this stderr is a lower bound.
        mean_row["stderr_basis"] = "positions treated as independent";
        ctx.record.add_metric(mean_row);
        ctx.record.add_metric(row("kld_p99", at::quantile(kld, 0.99).item<double>(), "nats"));
        ctx.record.add_metric(row("kld_max", kld.max().item<double>(), "nats"));
        json agree_row = row("top1_agree", p_agree, "fraction");
        agree_row["stderr"] = std::sqrt(p_agree * (1 - p_agree) / n); // binomial
        ctx.record.add_metric(agree_row);
    }

private:
    int64_t sequences_, seq_len_;
};

} // namespace

std::unique_ptr<evaluation> make_kl_divergence_evaluation(const json &options) { return std::make_unique<kl_divergence>(options); }

} // namespace qb
