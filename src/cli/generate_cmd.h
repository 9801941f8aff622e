// `qbench generate`: text from a model file with the KV cache, and its prefill / decode speed.
#pragma once
#include <CLI/CLI.hpp>

#include <string>

namespace qb::cli {

struct generate_args {
    std::string model_file; // a YAML file with a `model:` block (configs/checkpoints/*.yaml, an experiment)
    std::string prompt = "Once upon a time";
    std::string device = "cpu", dtype = "fp32", data_dir;
    int64_t max_new_tokens = 128;
    int64_t prompt_tokens = 0; // > 0: a seeded random prompt of this length (models without a tokenizer)
    double temperature = 0.0, top_p = 1.0;
    uint64_t seed = 0;
    bool quiet = false;
    bool cudnn_sdpa = false;
    bool eager = false; // CUDA decode without the step graph
};

CLI::App *add_generate_command(CLI::App &app, generate_args &args);
int run_generate(const generate_args &args);

} // namespace qb::cli
