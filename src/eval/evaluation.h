// Evaluations: measurements of a (quantized) model that become metric rows of a run record.
#pragma once
#include "core/experiment.h"
#include "core/json.h"
#include "core/registry.h"
#include "core/run_record.h"
#include "model/llama.h"

#include <filesystem>
#include <functional>
#include <memory>

namespace qb {

struct eval_context {
    const llama_model &base;  // the model as loaded, unquantized (reference for divergences)
    const llama_model &model; // the model under test (quantized, bound to its back-end)
    const experiment_cell &cell;
    const json &options;      // this evaluation's resolved options
    run_record &record;       // add_metric / add_dataset
    std::filesystem::path data_dir;
};

class evaluation {
public:
    virtual ~evaluation() = default;
    virtual void run(eval_context &ctx) const = 0;
};

struct evaluation_entry {
    component_info info;
    std::function<std::unique_ptr<evaluation>(const json &options)> create;
};

const registry<evaluation_entry> &evaluations();

// A metric row with the fields every row has (evaluation, metric, value, unit).
json metric_row(const std::string &evaluation, const std::string &metric, double value, const std::string &unit);

std::unique_ptr<evaluation> make_kl_divergence_evaluation(const json &options);
std::unique_ptr<evaluation> make_latency_evaluation(const json &options);

} // namespace qb
