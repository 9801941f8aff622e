// Experiment files (YAML) parsed into plain structs, and their expansion into runnable cells.
//
//   include: ../configs/base/synthetic.yaml   # merged first; this file's keys override
//   name: rtn_sweep                            # results/<name>/...
//   model: {format: synthetic, config: tiny-llama}
//   quantizer: [{name: none}, {name: rtn, w_bits: [8, 6, 4]}]   # alternatives; lists sweep
//   evaluations: [{name: kl_divergence, tokens: 4096}, {name: latency}]
//
// Every list where one value is expected is a sweep axis; cells are the cartesian product,
// ordered model-major so that a model is loaded once per group. The canonical JSON of a cell
// (all defaults filled) is what the config hash covers.
#pragma once
#include "core/config_tree.h"
#include "core/json.h"
#include "core/registry.h"

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace qb {

struct component_config {
    std::string name; // registry key
    json options;     // every option of the component's schema, defaults filled
    json to_json() const;
};

// One runnable cell of an experiment: everything that determines its numbers.
struct experiment_cell {
    component_config model;     // name = model format; options include the display name
    std::string device = "cpu"; // cpu | cuda
    std::string dtype = "fp32"; // fp32 | fp16 | bf16
    uint64_t seed = 0;
    component_config quantizer;
    component_config backend;
    std::vector<component_config> evaluations;

    json to_json() const;           // the resolved config (manifest "config")
    std::string config_hash() const; // sha256 of canonical_json(to_json())
    std::string model_key() const;   // cells with equal keys share one loaded model
};

// Defaults for `qbench table` when it is given this experiment.
struct table_config {
    std::string reference;       // CSV of reference numbers (e.g. the paper's), relative to the file
    std::string reference_value; // column holding the value ("value" when the CSV is long)
    std::string reference_melt;  // wide CSV: the name of the field its extra columns are values of
    std::vector<std::string> join; // "refcol=field" pairs matching reference rows to our rows
    std::string metric;          // our metric compared with the reference ("evaluation.metric")
    std::vector<std::string> columns; // identity columns to show (default: the ones that vary)
};

struct experiment {
    std::filesystem::path file;
    std::string name;
    std::string description;
    std::string data_dir; // optional; where datasets/models are looked up (not part of the hash)
    table_config table;
    std::vector<experiment_cell> cells;
};

// Parses and validates; throws config_error (file:line:col: key.path: message).
experiment experiment_parse(const config_node &root, const std::filesystem::path &file, const component_catalog &catalog);
experiment experiment_load(const std::filesystem::path &file, const component_catalog &catalog);
// The `model:` block of a file (an experiment, or a model file such as configs/checkpoints/*.yaml,
// includes resolved), validated like an experiment's; exactly one model. Other keys are ignored.
component_config model_block_load(const std::filesystem::path &file, const component_catalog &catalog);

// The option schema of the experiment's own top-level scalars (device, dtype, seed), for docs.
const std::vector<option_spec> &experiment_top_level_options();

} // namespace qb
