// Evaluations: measurements of a (quantized) model that become metric rows of a run record.
#pragma once
#include "core/experiment.h"
#include "core/json.h"
#include "core/paths.h"
#include "core/registry.h"
#include "core/status.h"
#include "core/run_record.h"
#include "model/llama.h"
#include "tokenizer/tokenizer.h"

#include <filesystem>
#include <functional>
#include <memory>

namespace qb {

struct eval_context {
    const llama_model &base;  // the model as loaded, unquantized (reference for divergences)
    const llama_model &model; // the model under test (quantized, bound to its back-end)
    const tokenizer *tok;     // null when the model has no tokenizer (synthetic)
    const std::string &model_identity; // hash of what determines the base weights (cache keys)
    const experiment_cell &cell;
    const json &options;      // this evaluation's resolved options
    run_record &record;       // add_metric / add_dataset
    const data_dir_choice &data;
    std::filesystem::path cache_dir; // for reusable intermediate results (base log-probs)
};

class evaluation {
public:
    virtual ~evaluation() = default;
    // Whether this evaluation can run on this model at all (a tokenizer, the data), before work.
    virtual status supports(const eval_context &) const { return status::success(); }
    virtual void run(eval_context &ctx) const = 0;
};

struct evaluation_entry {
    component_info info;
    std::function<std::unique_ptr<evaluation>(const json &options)> create;
};

const registry<evaluation_entry> &evaluations();

// A metric row with the fields every row has (evaluation, metric, value, unit).
json metric_row(const std::string &evaluation, const std::string &metric, double value, const std::string &unit);

// Mean and sample standard deviation (n - 1; 0 for a single value) of a non-empty sample.
std::pair<double, double> mean_sd(const std::vector<double> &v);

std::unique_ptr<evaluation> make_kl_divergence_evaluation(const json &options);
std::unique_ptr<evaluation> make_latency_evaluation(const json &options);
std::unique_ptr<evaluation> make_perplexity_evaluation(const json &options);
std::unique_ptr<evaluation> make_zeroshot_evaluation(const json &options);

} // namespace qb
