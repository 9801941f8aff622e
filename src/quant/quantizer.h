// Quantizers: turn a model's decoder linears into quantized weights (fake-quant reference data
// and, where a format defines one, packed storage). The back-end decides how they execute.
#pragma once
#include "core/json.h"
#include "core/registry.h"
#include "core/status.h"
#include "core/paths.h"
#include "model/llama.h"
#include "tokenizer/tokenizer.h"

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>

namespace qb {

// What a calibrated method (flexq's sensitivity analysis, smoothquant) reads text from. The
// quantizer options calib_* (calibration_option_specs) fill it.
struct calibration_options {
    std::string dataset = "wikitext2"; // wikitext2 | c4 | text (a plain file named by path)
    std::string split = "validation";  // train | validation | test (wikitext2, c4)
    std::string path;                  // relative to the data directory; overrides dataset/split
    int64_t windows = 8;               // token windows drawn at random positions
    int64_t seq_len = 512;             // tokens per window
    uint64_t seed = 0;                 // window positions (and the tokens of a synthetic model)
    json to_json() const;
};

// Everything around the model a quantizer may use. All fields are optional: without a tokenizer
// (synthetic models) calibration uses seeded random token windows and says so in its report;
// without a run directory no report files are written.
struct quantize_context {
    const tokenizer *tok = nullptr;
    std::optional<data_dir_choice> data;  // where calibration text is looked up
    std::filesystem::path run_dir;        // per-method reports (sensitivity.json, .csv, .png)
    std::function<void(const std::string &name, json info)> add_dataset; // manifest datasets hook
};

class quantizer {
public:
    virtual ~quantizer() = default;
    // Whether this method can quantize the model (group sizes that divide K, ...), before any work.
    virtual status supports(const llama_model &model) const = 0;
    // Quantizes `model` in place (its linears; embeddings, norms and lm_head stay full
    // precision; a method may replace norm gains with new tensors, never write into shared
    // ones) and returns a report for the manifest (bits per weight, errors, layer choices).
    virtual json apply(llama_model &model, const quantize_context &ctx) const = 0;
    // Without calibration data or a run directory (tests, tools).
    json apply(llama_model &model) const { return apply(model, quantize_context{}); }
};

struct quantizer_entry {
    component_info info;
    std::function<std::unique_ptr<quantizer>(const json &options)> create;
};

const registry<quantizer_entry> &quantizers();

// Symmetric or asymmetric round-to-nearest (half to even) of a [N, K] weight in groups of
// `group_size` along K (0 = per output channel), computed in fp32 with fp32 scales
// (quant/primitives.h has every granularity and the fp16-scale form).
quantized_weight quantize_weight_rtn(const at::Tensor &weight, int bits, int64_t group_size, bool symmetric);

// A quantizer's options with the registered defaults filled in; an option the quantizer does not
// declare is an error naming it and the ones it has (factories called outside YAML parsing).
json quantizer_options_resolved(const std::string &quantizer, const json &given);

// The calib_* options of calibrated methods, and the struct they fill.
std::vector<option_spec> calibration_option_specs();
calibration_options calibration_from_options(const json &resolved);

} // namespace qb

namespace qb {
// Factories of the registered methods (one file each).
std::unique_ptr<quantizer> make_none_quantizer(const json &options);
std::unique_ptr<quantizer> make_rtn_quantizer(const json &options);
std::unique_ptr<quantizer> make_group_int_quantizer(const json &options);
std::unique_ptr<quantizer> make_flexq_quantizer(const json &options);
std::unique_ptr<quantizer> make_smoothquant_quantizer(const json &options);
} // namespace qb
