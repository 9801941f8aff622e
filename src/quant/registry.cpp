// THE list of quantizers: adding one = one entry here + one file.
#include "quant/quantizer.h"

#include "core/error.h"

namespace qb {

namespace {

std::vector<option_spec> with_calibration(std::vector<option_spec> specs) {
    for (auto &s : calibration_option_specs()) specs.push_back(std::move(s));
    return specs;
}

} // namespace

const registry<quantizer_entry> &quantizers() {
    static const registry<quantizer_entry> r(
        component_kind::quantizer,
        {
            {{"none", "no quantization: the model in its own dtype (the baseline row)", {}},
             make_none_quantizer},
            {{"rtn",
              "round-to-nearest weights (half to even), per tensor / channel / group; activations A16 or dynamic per token (WxAy)",
              {
                  {"w_bits", option_type::integer, 8, "weight bits", 2, 8},
                  {"group_size", option_type::integer, 0, "weights per scale along K (0 = one per output channel, -1 = one per tensor)", -1, 65536},
                  {"symmetric", option_type::boolean, true, "symmetric (absmax) or asymmetric (min/max with zero point)"},
                  {"scale_dtype", option_type::choice, "fp16", "how weight scales are stored (fp16: clamped to [1e-5, 1e4], as deployed)",
                   -INFINITY, INFINITY, {"fp16", "fp32"}},
                  {"a_bits", option_type::integer, 0, "activation bits, dynamic symmetric (0 = activations stay 16-bit)", 0, 8},
                  {"a_group_size", option_type::integer, 0, "activations per scale along K within a token (0 = per token)", 0, 65536},
              }},
             make_rtn_quantizer},
            {{"group_int6",
              "FlexQ's group quantization with uniform activations: W6 g128 (fp16 scales) and A6 g128 dynamic; any W/A bits",
              {
                  {"w_bits", option_type::integer, 6, "weight bits (symmetric)", 2, 8},
                  {"group_size", option_type::integer, 128, "weights per scale along K", 1, 65536},
                  {"a_bits", option_type::integer, 6, "activation bits for every layer (0 = activations stay 16-bit)", 0, 8},
                  {"a_group_size", option_type::integer, 128, "activations per scale along K within a token (0 = per token)", 0, 65536},
              }},
             make_group_int_quantizer},
            {{"flexq",
              "FlexQ W6A6 g128 with selective A8: layers chosen by a layer-wise sensitivity analysis (default) or the paper's down_proj preset",
              with_calibration({
                  {"selection", option_type::choice, "sensitivity",
                   "sensitivity: calibrated layer-wise analysis; paper: mlp.down_proj at A8 as the released code", -INFINITY, INFINITY,
                   {"sensitivity", "paper"}},
                  {"sensitivity_metric", option_type::choice, "layer_error",
                   "layer_error: relative output error of the layer (one pass); kl: KL of the model's output with only that layer at low bits",
                   -INFINITY, INFINITY, {"layer_error", "kl"}},
                  {"sensitivity_threshold", option_type::number, 0.05, "a layer scoring above this gets A8 (0 = no threshold: budget decides)", 0,
                   INFINITY},
                  {"a8_budget", option_type::integer, -1, "at most this many A8 layers, highest scores first (-1 = no limit)", -1, 1 << 20},
                  {"w_bits", option_type::integer, 6, "weight bits (symmetric, fp16 group scales)", 2, 8},
                  {"group_size", option_type::integer, 128, "weights and activations per scale along K", 1, 65536},
                  {"a_bits", option_type::integer, 6, "activation bits of the layers not chosen", 2, 8},
                  {"a_bits_sensitive", option_type::integer, 8, "activation bits of the chosen layers", 2, 8},
                  {"write_report", option_type::boolean, true, "write sensitivity.json/.csv/.png into the run directory"},
              })},
             make_flexq_quantizer},
            {{"smoothquant",
              "SmoothQuant: alpha migration of activation outliers into weights (folded into norms), then W8A8 / W6A6 per channel x per token",
              with_calibration({
                  {"alpha", option_type::number, 0.5, "migration strength: s = max|X|^alpha / max|W|^(1-alpha)", 0, 1},
                  {"w_bits", option_type::integer, 8, "weight bits (symmetric, per output channel)", 2, 8},
                  {"a_bits", option_type::integer, 8, "activation bits (symmetric, dynamic per token; 0 = 16-bit)", 0, 8},
                  {"scale_dtype", option_type::choice, "fp16", "how weight scales are stored", -INFINITY, INFINITY, {"fp16", "fp32"}},
                  {"smooth_down_proj", option_type::boolean, false, "also smooth down_proj's input, folded into up_proj's rows (exact)"},
              })},
             make_smoothquant_quantizer},
        });
    return r;
}

json quantizer_options_resolved(const std::string &name, const json &given) {
    const auto &entry = quantizers().get(name);
    json out = json::object();
    std::vector<std::string> known;
    for (const auto &spec : entry.info.options) {
        known.push_back(spec.name);
        if (given.is_object() && given.contains(spec.name)) out[spec.name] = given.at(spec.name);
        else if (spec.required()) fail("quantizer {}: option {} is required", name, spec.name);
        else out[spec.name] = spec.default_value;
    }
    if (given.is_object())
        for (const auto &[k, v] : given.items())
            if (!out.contains(k)) fail("quantizer {}: unknown option '{}'.{}", name, k, suggestion_hint(k, known));
    if (out.contains("a_bits") && out["a_bits"] == 1) fail("quantizer {}: a_bits must be 0 (16-bit) or 2..8, got 1", name);
    return out;
}

} // namespace qb
