// Quantizers: turn a model's decoder linears into quantized weights (fake-quant reference data
// and, where a format defines one, packed storage). The back-end decides how they execute.
#pragma once
#include "core/json.h"
#include "core/registry.h"
#include "core/status.h"
#include "model/llama.h"

#include <functional>
#include <memory>

namespace qb {

class quantizer {
public:
    virtual ~quantizer() = default;
    // Whether this method can quantize the model (group sizes that divide K, ...), before any work.
    virtual status supports(const llama_model &model) const = 0;
    // Quantizes `model` in place (its linears; embeddings, norms and lm_head stay full
    // precision) and returns a report for the manifest (bits per weight, errors, layer choices).
    virtual json apply(llama_model &model) const = 0;
};

struct quantizer_entry {
    component_info info;
    std::function<std::unique_ptr<quantizer>(const json &options)> create;
};

const registry<quantizer_entry> &quantizers();

// Symmetric or asymmetric round-to-nearest (half to even) of a [N, K] weight in groups of
// `group_size` along K (0 = per output channel), computed in fp32.
quantized_weight quantize_weight_rtn(const at::Tensor &weight, int bits, int64_t group_size, bool symmetric);

} // namespace qb

namespace qb {
// Factories of the registered methods (one file each).
std::unique_ptr<quantizer> make_none_quantizer(const json &options);
std::unique_ptr<quantizer> make_rtn_quantizer(const json &options);
} // namespace qb
