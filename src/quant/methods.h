// Helpers shared by the quantization methods (rtn.cpp with group_int6, flexq.cpp, smoothquant.cpp):
// the shape checks behind supports(), weight quantization of every decoder linear with its
// report, and SmoothQuant's smoothing (exposed for its invariance test).
#pragma once
#include "quant/primitives.h"
#include "quant/quantizer.h"

#include <functional>
#include <map>

namespace qb {

// Every decoder linear's K must suit the weight spec and the activation grouping (a_group_size 0 =
// per token: any K). The reason names the method, the layer and the values.
status check_linear_shapes(const llama_model &model, const std::string &method, const quant_spec &weights, int64_t a_group_size);

// Quantizes every decoder linear's weight with `weights` and sets its activation quantization to
// act(layer). Returns the report: parameters, bits per weight as stored by the packed format
// (codes + scales + zero points; docs/packed-format.md), relative weight error (mean, max),
// weight format, and how many layers got which activation setting.
json quantize_linears(llama_model &model, const quant_spec &weights, const std::function<activation_quant(const linear_layer &)> &act);

// SmoothQuant's migration with per-input-channel activation absmax (by linear name, fp32 [K]):
// s_j = max|X_j|^alpha / max|W_j|^(1 - alpha) (both floored at 1e-5, as the reference code),
// W_j *= s_j and the producer of X divides by s_j, folded exactly: q/k/v into attn_norm,
// gate/up into ffn_norm, and with smooth_down_proj down_proj into up_proj's rows (silu(g) * u is
// linear in u). o_proj is left as is (its producer is attention over v with shared heads).
// New tensors replace the old ones (the base model is not written). Returns per-group statistics.
json smooth_model(llama_model &model, const std::map<std::string, at::Tensor> &absmax, double alpha, bool smooth_down_proj);

} // namespace qb
