// flexq: W6 g128 weights, A6 g128 activations, and 8-bit activations on the layers that need them.
//   selection: paper        LLaMA mlp.down_proj at A8, every other decoder linear at A6 (what
//                           the released code hard-codes).
//   selection: sensitivity  (default) the layer-wise analysis the paper describes and its code
//                           lacks: for each decoder linear, only that layer's input is quantized to
//                           A6 on calibration windows and its damage scored (calibration.h); layers
//                           scoring above sensitivity_threshold, at most a8_budget of them, get A8.
// The analysis runs on the full-precision model before the weights are quantized, so each score
// is the activation damage alone. Reports (sensitivity.json/.csv/.png) go to the run directory.
//
// Why the default score is the layer's relative output error ||W Q(x) - W x|| / ||W x||: the
// reference recipe's threshold (0.05) is on this scale. Activations without outliers lose about
// 2-3% at A6 g128 (a step of absmax/31 over ~2.7 sigma gives an rms error near 2.5% of sigma),
// while a layer whose groups hold outlier channels loses far more, so 0.05 separates "as benign as
// Gaussian input" from "outlier-dominated". It costs one forward pass for all layers at once.
// sensitivity_metric: kl instead scores the end-to-end effect, the mean KL divergence of the
// next-token distribution from the full-precision model's with only that layer at A6 (one forward
// per layer); its values are much smaller (set the threshold or a budget accordingly).
#include "quant/calibration.h"
#include "quant/methods.h"

#include "core/log.h"

#include <fmt/format.h>

#include <cmath>
#include <set>

namespace qb {
namespace {

class flexq_quantizer final : public quantizer {
public:
    explicit flexq_quantizer(const json &given) : o_(quantizer_options_resolved("flexq", given)) {
        weights_ = quant_spec_of(o_["w_bits"], o_["group_size"], true, scale_format::fp16);
        low_.bits = o_["a_bits"];
        high_.bits = o_["a_bits_sensitive"];
        low_.group_size = high_.group_size = o_["group_size"];
    }

    status supports(const llama_model &model) const override { return check_linear_shapes(model, "flexq", weights_, low_.group_size); }

    json apply(llama_model &model, const quantize_context &ctx) const override {
        json r = {{"method", "flexq"}, {"options", o_}, {"selection", o_["selection"]}};
        std::vector<std::string> chosen;
        if (o_["selection"] == "paper") {
            for (const auto *l : model.linears())
                if (l->name.ends_with("mlp.down_proj")) chosen.push_back(l->name);
        } else {
            const calibration_options calib = calibration_from_options(o_);
            const calibration_set set = calibration_tokens(model, ctx, calib);
            const auto metric = sensitivity_metric_from_name(o_["sensitivity_metric"]);
            log_info("flexq: sensitivity of {} linears to A{} ({}, {} windows of {} tokens{})", model.linears().size(), low_.bits,
                     sensitivity_metric_name(metric), calib.windows, calib.seq_len,
                     set.source["kind"] == "random_tokens" ? ", random tokens: the model has no tokenizer" : "");
            auto scores = sensitivity_scan(model, set.tokens, low_, metric, o_["calib_batch"]);
            chosen = select_sensitive(scores, o_["sensitivity_threshold"], o_["a8_budget"]);
            json settings = {{"metric", sensitivity_metric_name(metric)},
                             {"threshold", o_["sensitivity_threshold"]},
                             {"budget", o_["a8_budget"]},
                             {"a_bits", low_.bits},
                             {"a_bits_sensitive", high_.bits},
                             {"group_size", low_.group_size},
                             {"calibration", set.source},
                             {"chosen", chosen}};
            json table = json::array();
            for (const auto &s : scores)
                table.push_back({{"name", s.name}, {"rel_error", s.rel_error}, {"kl", std::isfinite(s.kl) ? json(s.kl) : json(nullptr)},
                                 {"a8", s.chosen}});
            r["sensitivity"] = {{"metric", settings["metric"]}, {"threshold", settings["threshold"]}, {"budget", settings["budget"]},
                                {"calibration", set.source}, {"layers", table}};
            if (!ctx.run_dir.empty() && o_["write_report"].get<bool>()) {
                auto files = write_sensitivity_report(ctx.run_dir, scores, settings);
                r["sensitivity"]["files"] = files;
                log_info("flexq: {} of {} layers at A{}; report in {}", chosen.size(), scores.size(), high_.bits,
                         (ctx.run_dir / "sensitivity.png").string());
            }
        }
        const std::set<std::string> a8(chosen.begin(), chosen.end());
        json w = quantize_linears(model, weights_, [&](const linear_layer &l) { return a8.count(l.name) ? high_ : low_; });
        r.update(w);
        r["a8_layers"] = chosen;
        r["a8_count"] = chosen.size();
        r["w_bits"] = weights_.bits;
        r["group_size"] = weights_.group_size;
        r["a_bits"] = low_.bits;
        return r;
    }

private:
    json o_;
    quant_spec weights_;
    activation_quant low_, high_;
};

} // namespace

std::unique_ptr<quantizer> make_flexq_quantizer(const json &options) { return std::make_unique<flexq_quantizer>(options); }

} // namespace qb
