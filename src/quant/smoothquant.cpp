// smoothquant (Xiao et al. 2023): migrate activation outliers into the weights with a
// per-input-channel factor from calibration statistics, then quantize weights per output channel
// and activations per token, dynamically: W8A8 by default, W6A6 as FlexQ's main baseline. The
// smoothing is folded into the preceding RMSNorm gains (q/k/v, gate/up) and optionally into
// up_proj's rows (down_proj): no runtime input scale, and exact up to floating-point rounding
// (tests/quant checks the unquantized model's outputs are unchanged).
#include "quant/calibration.h"
#include "quant/methods.h"

#include "core/error.h"
#include "core/log.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <fmt/format.h>

namespace qb {

namespace {

constexpr double smooth_floor = 1e-5; // the reference code's clamp of both statistics and factors

// s = act^alpha / w^(1-alpha) with w = max |W_j| over every row of every consumer.
at::Tensor smoothing_factors(const at::Tensor &act_absmax, const std::vector<const linear_layer *> &consumers, double alpha) {
    at::Tensor w_absmax;
    for (const auto *l : consumers) {
        auto m = l->weight.to(at::kFloat).abs().amax(0); // [K]
        w_absmax = w_absmax.defined() ? at::maximum(w_absmax, m) : m;
    }
    return (act_absmax.clamp_min(smooth_floor).pow(alpha) / w_absmax.clamp_min(smooth_floor).pow(1.0 - alpha)).clamp_min(smooth_floor);
}

// W[:, j] *= s_j, in fp32, back to the weight's dtype (a new tensor).
void scale_columns(linear_layer &l, const at::Tensor &s) { l.weight = (l.weight.to(at::kFloat) * s.unsqueeze(0)).to(l.weight.scalar_type()); }

json factor_stats(const at::Tensor &s) {
    return {{"min", s.min().item<double>()}, {"max", s.max().item<double>()}, {"mean", s.mean().item<double>()}};
}

} // namespace

json smooth_model(llama_model &model, const std::map<std::string, at::Tensor> &absmax, double alpha, bool smooth_down_proj) {
    c10::InferenceMode guard;
    auto stat = [&](const linear_layer &l) {
        auto it = absmax.find(l.name);
        if (it == absmax.end() || !it->second.defined()) fail("smoothquant: no activation statistics for {}", l.name);
        return it->second.to(l.weight.device(), at::kFloat);
    };
    json groups = json::array();
    for (size_t i = 0; i < model.layers.size(); ++i) {
        auto &d = model.layers[i];
        // q/k/v read the same normalized input: one factor, folded into attn_norm.
        auto s_attn = smoothing_factors(stat(d.q_proj), {&d.q_proj, &d.k_proj, &d.v_proj}, alpha);
        d.attn_norm = (d.attn_norm.to(at::kFloat) / s_attn).to(d.attn_norm.scalar_type());
        for (auto *l : {&d.q_proj, &d.k_proj, &d.v_proj}) scale_columns(*l, s_attn);
        groups.push_back({{"layer", i}, {"input_of", "q_proj,k_proj,v_proj"}, {"folded_into", "attn_norm"}, {"factors", factor_stats(s_attn)}});

        auto s_ffn = smoothing_factors(stat(d.gate_proj), {&d.gate_proj, &d.up_proj}, alpha);
        d.ffn_norm = (d.ffn_norm.to(at::kFloat) / s_ffn).to(d.ffn_norm.scalar_type());
        for (auto *l : {&d.gate_proj, &d.up_proj}) scale_columns(*l, s_ffn);
        groups.push_back({{"layer", i}, {"input_of", "gate_proj,up_proj"}, {"folded_into", "ffn_norm"}, {"factors", factor_stats(s_ffn)}});

        if (smooth_down_proj) {
            // down's input is silu(gate) * up: dividing up's output row j by s_j divides input j.
            auto s_down = smoothing_factors(stat(d.down_proj), {&d.down_proj}, alpha);
            d.up_proj.weight = (d.up_proj.weight.to(at::kFloat) / s_down.unsqueeze(1)).to(d.up_proj.weight.scalar_type());
            if (d.up_proj.bias.defined()) d.up_proj.bias = (d.up_proj.bias.to(at::kFloat) / s_down).to(d.up_proj.bias.scalar_type());
            scale_columns(d.down_proj, s_down);
            groups.push_back({{"layer", i}, {"input_of", "down_proj"}, {"folded_into", "up_proj rows"}, {"factors", factor_stats(s_down)}});
        }
    }
    return groups;
}

namespace {

class smoothquant_quantizer final : public quantizer {
public:
    explicit smoothquant_quantizer(const json &given) : o_(quantizer_options_resolved("smoothquant", given)) {
        weights_ = quant_spec_of(o_["w_bits"], 0, true, scale_format_from_name(o_["scale_dtype"]));
        act_.bits = o_["a_bits"];
        act_.group_size = 0; // per token, dynamic (SmoothQuant's O1/O2 settings' dynamic variant)
    }

    status supports(const llama_model &model) const override { return check_linear_shapes(model, "smoothquant", weights_, 0); }

    json apply(llama_model &model, const quantize_context &ctx) const override {
        const calibration_options calib = calibration_from_options(o_);
        const calibration_set set = calibration_tokens(model, ctx, calib);
        log_info("smoothquant: activation statistics over {} windows of {} tokens{}", calib.windows, calib.seq_len,
                 set.source["kind"] == "random_tokens" ? " (random tokens: the model has no tokenizer)" : "");
        const auto absmax = activation_channel_absmax(model, set.tokens, o_["calib_batch"]);
        json smoothing = smooth_model(model, absmax, o_["alpha"], o_["smooth_down_proj"]);
        json r = quantize_linears(model, weights_, [&](const linear_layer &) { return act_; });
        r["method"] = "smoothquant";
        r["options"] = o_;
        r["alpha"] = o_["alpha"];
        r["w_bits"] = weights_.bits;
        r["a_bits"] = act_.bits;
        r["calibration"] = set.source;
        r["smoothing"] = smoothing;
        return r;
    }

private:
    json o_;
    quant_spec weights_;
    activation_quant act_;
};

} // namespace

std::unique_ptr<quantizer> make_smoothquant_quantizer(const json &options) { return std::make_unique<smoothquant_quantizer>(options); }

} // namespace qb
