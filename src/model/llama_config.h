// Architecture of a LLaMA-family decoder (torch-free): what configs/models/<name>.yaml holds and
// what every model format produces.
#pragma once
#include "core/json.h"
#include "core/options.h"

#include <cstdint>
#include <filesystem>
#include <string>

namespace qb {

enum class rope_style {
    half_split,  // rotate (x[i], x[i + d/2]) — Hugging Face LLaMA
    interleaved, // rotate (x[2i], x[2i+1]) — Meta's original code, llama2.c
};

struct llama_config {
    std::string name;
    int64_t dim = 0;
    int64_t hidden_dim = 0;
    int64_t n_layers = 0;
    int64_t n_heads = 0;
    int64_t n_kv_heads = 0; // grouped-query attention when < n_heads
    int64_t vocab_size = 0;
    int64_t max_seq_len = 2048;
    double norm_eps = 1e-5;
    double rope_theta = 10000.0;
    rope_style rope = rope_style::half_split;
    bool tied_embeddings = false;
    bool qkv_bias = false; // Qwen2-style biases on q/k/v
    // LLaMA-3.1 frequency-dependent RoPE scaling ("rope_type": "llama3"); factor 0 = none.
    double rope_scaling_factor = 0.0;
    double rope_low_freq_factor = 1.0;
    double rope_high_freq_factor = 4.0;
    int64_t rope_original_max_seq_len = 8192;

    int64_t head_dim() const { return dim / n_heads; }
    int64_t kv_dim() const { return head_dim() * n_kv_heads; }
    // Parameters of the decoder linears (what quantizers touch) and of the whole model.
    int64_t linear_parameters() const;
    int64_t total_parameters() const;

    void validate() const; // throws qb::error naming the inconsistent fields
    json to_json() const;
};

// The inverse of llama_config::to_json (every key required; not validated: callers decide how a
// bad shape is reported).
llama_config llama_config_from_json(const json &j);

const std::vector<option_spec> &llama_config_options();
// Reads configs/models/<name>.yaml (or a path); strict: unknown keys, types and ranges.
llama_config llama_config_load(const std::filesystem::path &file);
// Looks a config name up in <config_dir>/models/<name>.yaml; the error lists the names available.
llama_config llama_config_find(const std::string &name, const std::filesystem::path &config_dir,
                               std::filesystem::path *found_file = nullptr);

} // namespace qb
