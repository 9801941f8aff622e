// `qbench quantize`: quantize a model once and write a packed checkpoint (.qbq) that `qbench run`
// loads with the model format `packed`.
#pragma once
#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

namespace qb::cli {

struct quantize_args {
    std::string input;          // experiment YAML (one of its cells) or architecture YAML (configs/models/*.yaml: synthetic)
    std::string output;         // .qbq file
    int cell = 0;               // 1-based cell of an experiment (0 = the only quantized one)
    std::string quantizer;      // architecture input: the method
    std::vector<std::string> set; // architecture input: key=value quantizer options
    std::string device = "cpu", dtype = "fp16";
    uint64_t seed = 0;          // architecture input: weights' seed
    std::string data_dir;
    std::string report_dir;     // default: <output>.reports/
};

class quantize_command {
public:
    // Adds the `quantize` subcommand to `app`.
    explicit quantize_command(CLI::App &app);
    bool parsed() const { return cmd_->parsed(); }
    // Runs it (after parsing); throws qb::error / config_error like the other commands.
    int run() const;

private:
    CLI::App *cmd_;
    quantize_args args_;
};

std::unique_ptr<quantize_command> add_quantize_command(CLI::App &app);

} // namespace qb::cli
