// Calibration for the methods that look at activations: token windows from a text split (or
// seeded random tokens for a model without a tokenizer), per-input-channel activation statistics
// (SmoothQuant), and the layer-wise sensitivity of each decoder linear to low-bit activations
// (FlexQ's selective A8). Everything runs the model's own forward with temporary probes bound as
// the linears' runtimes; the probes are removed afterwards.
#pragma once
#include "quant/quantizer.h"

#include <ATen/core/Tensor.h>

#include <map>
#include <string>
#include <vector>

namespace qb {

// Token windows [windows, seq_len] int64 on the model's device, and where they came from.
struct calibration_set {
    at::Tensor tokens;
    json source; // {"kind": "text" | "random_tokens", dataset, file, sha256, windows, seq_len, seed, note}
};
calibration_set calibration_tokens(const llama_model &model, const quantize_context &ctx, const calibration_options &opt);

// Largest |x| of each input channel of every decoder linear over the calibration windows,
// fp32 [K] on the model's device, by layer name.
std::map<std::string, at::Tensor> activation_channel_absmax(llama_model &model, const at::Tensor &tokens, int64_t batch);

// Damage of low-bit activations on one layer alone (everything else full precision).
//   rel_error: || linear(Q(x)) - linear(x) ||_F / || linear(x) ||_F over all calibration tokens,
//              x = the layer's input under the full-precision model (one forward for all layers).
//   kl:        mean over calibration tokens of KL(P_full || P_q), where P_q is the model's next-token
//              distribution with only this layer's input quantized (one forward per layer; only
//              computed when asked, else NaN).
struct layer_sensitivity {
    std::string name;   // layers.3.mlp.down_proj
    std::string module; // down_proj
    int64_t layer = 0;  // decoder layer index
    double rel_error = 0;
    double kl = 0;
    double score = 0;   // the metric that selection uses
    bool chosen = false;
};
enum class sensitivity_metric { layer_error, kl };
sensitivity_metric sensitivity_metric_from_name(const std::string &name);
const char *sensitivity_metric_name(sensitivity_metric m);

std::vector<layer_sensitivity> sensitivity_scan(llama_model &model, const at::Tensor &tokens, const activation_quant &low,
                                                sensitivity_metric metric, int64_t batch);

// Marks `chosen`: score > threshold (threshold <= 0: every layer passes), then at most `budget`
// layers (budget < 0: no limit), highest scores first. Returns the chosen names in model order.
std::vector<std::string> select_sensitive(std::vector<layer_sensitivity> &scores, double threshold, int64_t budget);

// sensitivity.json, sensitivity.csv and sensitivity.png in `dir`; returns the file names written.
std::vector<std::string> write_sensitivity_report(const std::filesystem::path &dir, const std::vector<layer_sensitivity> &scores,
                                                  const json &settings);

} // namespace qb
