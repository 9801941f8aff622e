// Loaders of real checkpoints (llama2.c, Hugging Face safetensors, GGUF), registered as model
// formats in formats.cpp. Each records its input files with sha256 and an identity hash.
#pragma once
#include "model/formats.h"

namespace qb {

// A model file named in an experiment: absolute; `pkg:<python package>/<file>` (a pip-installed
// model package, found next to the torch wheel); or relative to the data directory. Missing
// files are an error that says where they were looked for.
std::filesystem::path resolve_model_path(const std::string &spec, const std::filesystem::path &data_dir);

// config.json (parsed) → architecture; refuses what the decoder cannot run, naming the key.
llama_config llama_config_from_hf(const json &config, const std::string &where);

loaded_model load_llama2c(const json &options, const model_load_context &ctx);
loaded_model load_hf(const json &options, const model_load_context &ctx);
loaded_model load_gguf(const json &options, const model_load_context &ctx);

} // namespace qb
