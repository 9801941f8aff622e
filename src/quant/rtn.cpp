// Round-to-nearest: the plain baseline every other method is measured against (rtn: weights WxA16,
// or WxAy with dynamic per-token or per-token-group activations), and group_int6, the same
// round-to-nearest in FlexQ's format. Also the helpers every method shares (methods.h): shape
// checks and the weight pass with its report.
#include "quant/methods.h"
#include "quant/packed_checkpoint.h"

#include "core/error.h"

#include <ATen/ATen.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

namespace qb {

quantized_weight quantize_weight_rtn(const at::Tensor &weight, int bits, int64_t group_size, bool symmetric) {
    TORCH_CHECK(weight.dim() == 2, "weight must be [N, K]");
    return quantize_weight(weight, quant_spec_of(bits, group_size, symmetric, scale_format::fp32));
}

status check_linear_shapes(const llama_model &model, const std::string &method, const quant_spec &weights, int64_t a_group_size) {
    for (const auto *l : model.linears()) {
        const int64_t k = l->in_features();
        if (std::string why = quant_spec_problem(weights, k); !why.empty()) {
            if (weights.gran == granularity::group && weights.group_size > 0 && k % weights.group_size != 0)
                return status::failure(status_code::unsupported_shape, fmt::format("{}: {} has K={}, not a multiple of group_size={}",
                                                                                   method, l->name, k, weights.group_size));
            return status::failure(status_code::unsupported_option, fmt::format("{}: {}: {}", method, l->name, why));
        }
        if (a_group_size > 0 && k % a_group_size != 0)
            return status::failure(status_code::unsupported_shape,
                                   fmt::format("{}: {} has K={}, not a multiple of a_group_size={}", method, l->name, k, a_group_size));
    }
    return status::success();
}

json quantize_linears(llama_model &model, const quant_spec &weights, const std::function<activation_quant(const linear_layer &)> &act) {
    double err_sum = 0, err_max = 0;
    int64_t params = 0, bytes = 0;
    std::map<std::string, int64_t> act_counts;
    const auto ls = model.linears();
    for (auto *l : ls) {
        l->qweight = quantize_weight(l->weight, weights);
        l->act_quant = act(*l);
        ++act_counts[l->act_quant.describe()];
        auto w = l->weight.to(at::kFloat);
        const double rel = (l->qweight->dequantize() - w).norm().item<double>() / std::max(w.norm().item<double>(), 1e-30);
        err_sum += rel;
        err_max = std::max(err_max, rel);
        params += l->weight.numel();
        const auto &q = *l->qweight;
        bytes += packed_linear_bytes(l->out_features(), l->in_features(), q.bits, q.group_size, !q.zero_points.defined(),
                                     stored_scale_bytes(q))
                     .total();
    }
    json acts = json::object();
    for (const auto &[k, v] : act_counts) acts[k] = v;
    return {{"weight_format", weights.describe()},
            {"linear_parameters", params},
            {"bits_per_weight", params ? 8.0 * double(bytes) / double(params) : 0.0},
            {"packed_linear_bytes", bytes},
            {"weight_rel_error_mean", ls.empty() ? 0.0 : err_sum / double(ls.size())},
            {"weight_rel_error_max", err_max},
            {"activations", acts}};
}

namespace {

class none_quantizer final : public quantizer {
public:
    status supports(const llama_model &) const override { return status::success(); }
    json apply(llama_model &model, const quantize_context &) const override {
        int64_t params = 0;
        for (auto *l : model.linears()) params += l->weight.numel();
        const double bits = 8.0 * double(c10::elementSize(model.dtype()));
        return {{"method", "none"}, {"linear_parameters", params}, {"bits_per_weight", bits}};
    }
};

// rtn and group_int6 differ only in how their options map to the weight and activation
// settings: one class, two factories.
class uniform_quantizer final : public quantizer {
public:
    uniform_quantizer(std::string method, json options, quant_spec weights, activation_quant act)
        : method_(std::move(method)), o_(std::move(options)), weights_(weights), act_(act) {}

    status supports(const llama_model &model) const override {
        return check_linear_shapes(model, method_, weights_, act_.enabled() ? act_.group_size : 0);
    }

    json apply(llama_model &model, const quantize_context &) const override {
        json r = quantize_linears(model, weights_, [&](const linear_layer &) { return act_; });
        r["method"] = method_;
        r["options"] = o_;
        // Flat copies of the settings for tables.
        r["w_bits"] = weights_.bits;
        r["group_size"] = o_["group_size"];
        r["symmetric"] = weights_.symmetric;
        r["a_bits"] = act_.bits;
        return r;
    }

private:
    std::string method_;
    json o_;
    quant_spec weights_;
    activation_quant act_;
};

} // namespace

std::unique_ptr<quantizer> make_none_quantizer(const json &) { return std::make_unique<none_quantizer>(); }
std::unique_ptr<quantizer> make_rtn_quantizer(const json &given) {
    const json o = quantizer_options_resolved("rtn", given);
    const int64_t g = o["group_size"];
    quant_spec w = quant_spec_of(o["w_bits"], g, o["symmetric"], scale_format_from_name(o["scale_dtype"]));
    if (g < 0) w.gran = granularity::tensor;
    return std::make_unique<uniform_quantizer>("rtn", o, w, activation_quant{o["a_bits"], o["a_group_size"]});
}

// group_int6: FlexQ's quantization with uniform activations. Weights symmetric in groups along K
// with fp16 scales clamped to [1e-5, 1e4] (the released code's rule); activations dynamic,
// symmetric, per token in groups along K (or per token), the same bits on every layer.
std::unique_ptr<quantizer> make_group_int_quantizer(const json &given) {
    const json o = quantizer_options_resolved("group_int6", given);
    return std::make_unique<uniform_quantizer>("group_int6", o, quant_spec_of(o["w_bits"], o["group_size"], true, scale_format::fp16),
                                               activation_quant{o["a_bits"], o["a_group_size"]});
}

} // namespace qb
