// Model formats: how a model block of an experiment becomes a llama_model. One registry.
#pragma once
#include "core/json.h"
#include "core/registry.h"
#include "model/llama.h"
#include "tokenizer/tokenizer.h"

#include <memory>

#include <filesystem>
#include <functional>

namespace qb {

struct model_load_context {
    std::filesystem::path config_dir; // configs/ (model architectures by name)
    std::filesystem::path data_dir;   // where model files are looked up when a path is relative
    at::Device device = at::kCPU;
    at::ScalarType dtype = at::kFloat;
};

struct loaded_model {
    llama_model model;
    json inputs; // files read, with sha256 and size: goes into every manifest of the group
    std::shared_ptr<const tokenizer> tok; // null for synthetic models (no text)
    std::string identity; // hash of everything that determines the weights (cache keys)
};

struct model_format_entry {
    component_info info;
    std::function<loaded_model(const json &options, const model_load_context &)> load;
};

const registry<model_format_entry> &model_formats();

} // namespace qb
