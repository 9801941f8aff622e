// `qbench quantize` (quantize_cmd.h): load a model, quantize it with a registered method, write a
// packed checkpoint, print bits per weight, bytes and the time each step took.
//
//   qbench quantize experiments/x.yaml [--cell N] -o model.qbq
//       the model, device, dtype and quantizer of one cell of an experiment file
//   qbench quantize configs/models/llama-2-7b.yaml --quantizer flexq --set selection=paper
//       --device cuda --dtype fp16 -o llama2-7b-shaped.qbq   (one command line)
//       a synthetic model of that architecture (seeded weights, no tokenizer)
#include "cli/quantize_cmd.h"

#include "core/config_tree.h"
#include "core/error.h"
#include "core/experiment.h"
#include "core/log.h"
#include "core/options.h"
#include "core/paths.h"
#include "harness/catalog.h"
#include "model/formats.h"
#include "model/llama_config.h"
#include "quant/packed_checkpoint.h"
#include "quant/quantizer.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <c10/core/InferenceMode.h>

#include <fmt/format.h>

#include <chrono>
#include <iostream>

namespace qb::cli {

namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void synchronize(at::Device d) {
    // Timings must include the GPU work, not just its launch.
    if (d.is_cuda()) at::empty({1}, at::TensorOptions().device(d)).cpu();
}

// key=value pairs as a YAML mapping, validated by the quantizer's schema like an experiment file.
json options_from_set(const std::string &quantizer, const std::vector<std::string> &pairs) {
    std::string text;
    for (const auto &p : pairs) {
        const size_t eq = p.find('=');
        if (eq == std::string::npos || eq == 0) fail("--set {}: expected key=value", p);
        text += p.substr(0, eq) + ": " + p.substr(eq + 1) + "\n";
    }
    const config_node node = config_parse_text(text.empty() ? "{}" : text, "--set");
    const auto &entry = quantizers().get(quantizer);
    auto cells = option_expand(&node, entry.info.options, "quantizer", node.mark);
    if (cells.size() != 1) fail("--set: a list of values is a sweep; quantize takes one value per option");
    return cells.front();
}

} // namespace

quantize_command::quantize_command(CLI::App &app) {
    cmd_ = app.add_subcommand("quantize", "quantize a model once and write a packed checkpoint (.qbq; load it with model format 'packed')");
    cmd_->add_option("input", args_.input, "experiment YAML (one cell) or architecture YAML (configs/models/*.yaml: synthetic weights)")
        ->required()
        ->check(CLI::ExistingFile);
    cmd_->add_option("-o,--output", args_.output, "packed checkpoint to write")->required();
    cmd_->add_option("--cell", args_.cell, "experiment input: which cell (1-based; default: the only one that quantizes)");
    cmd_->add_option("--quantizer", args_.quantizer, "architecture input: the method (qbench list quantizers)");
    cmd_->add_option("--set", args_.set, "architecture input: a quantizer option, key=value (repeatable)");
    cmd_->add_option("--device", args_.device, "architecture input: cpu | cuda")->check(CLI::IsMember({"cpu", "cuda"}));
    cmd_->add_option("--dtype", args_.dtype, "architecture input: fp32 | fp16 | bf16")->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
    cmd_->add_option("--seed", args_.seed, "architecture input: seed of the synthetic weights");
    cmd_->add_option("--data-dir", args_.data_dir, "datasets and models (default: $QBENCH_DATA_DIR or <source>/../shared)");
    cmd_->add_option("--report-dir", args_.report_dir, "where method reports go (default: <output>.reports/)");
}

int quantize_command::run() const {
    const fs::path input = args_.input, output = args_.output;
    const config_node root = config_load_file(input);
    const bool architecture = root.find("dim") != nullptr && root.find("quantizer") == nullptr;

    loaded_model loaded;
    component_config quantizer_cfg;
    json source;
    data_dir_choice data;
    at::Device device = at::kCPU;
    const auto t_load = std::chrono::steady_clock::now();
    if (architecture) {
        if (args_.quantizer.empty()) fail("{} is an architecture file: name the method with --quantizer", input.string());
        if (args_.cell) fail("--cell applies to experiment files, {} is an architecture file", input.string());
        data = resolve_data_dir(args_.data_dir, "", input);
        device = at::Device(args_.device);
        if (device.is_cuda() && !at::globalContext().hasCUDA()) fail("--device cuda: no CUDA device in this build or machine");
        const llama_config config = llama_config_load(input);
        log_info("quantize: synthetic {} ({:.3g} M parameters, seed {}) on {} in {}", config.name, config.total_parameters() / 1e6, args_.seed,
                 device.str(), args_.dtype);
        c10::InferenceMode guard;
        loaded.model = llama_make_synthetic(config, args_.seed, dtype_from_name(args_.dtype), device);
        loaded.identity = json_hash(json{{"format", "synthetic"}, {"config", config.to_json()}, {"seed", args_.seed}});
        source = {{"format", "synthetic"}, {"config_file", input.string()}, {"seed", args_.seed}, {"identity", loaded.identity}};
        quantizer_cfg.name = args_.quantizer;
        quantizer_cfg.options = options_from_set(args_.quantizer, args_.set);
    } else {
        if (!args_.quantizer.empty() || !args_.set.empty())
            fail("--quantizer/--set apply to architecture files; {} is an experiment: its cells name the quantizer", input.string());
        const experiment exp = experiment_load(input, registered_catalog());
        data = resolve_data_dir(args_.data_dir, exp.data_dir, exp.file);
        size_t pick = 0;
        if (args_.cell > 0) {
            if (size_t(args_.cell) > exp.cells.size()) fail("--cell {}: {} has {} cells", args_.cell, input.string(), exp.cells.size());
            pick = size_t(args_.cell - 1);
        } else {
            std::vector<size_t> quantized;
            for (size_t i = 0; i < exp.cells.size(); ++i)
                if (exp.cells[i].quantizer.name != "none") quantized.push_back(i);
            if (quantized.size() != 1)
                fail("{} has {} cells that quantize: choose one with --cell (1..{})", input.string(), quantized.size(), exp.cells.size());
            pick = quantized.front();
        }
        const experiment_cell &cell = exp.cells[pick];
        device = at::Device(cell.device);
        if (device.is_cuda() && !at::globalContext().hasCUDA()) fail("cell {} asks for cuda: no CUDA device in this build or machine", pick + 1);
        model_load_context ctx{config_dir(), data.path, device, dtype_from_name(cell.dtype)};
        loaded = model_formats().get(cell.model.name).load(cell.model.options, ctx);
        quantizer_cfg = cell.quantizer;
        source = {{"format", cell.model.name}, {"options", cell.model.options}, {"identity", loaded.identity}, {"inputs", loaded.inputs},
                  {"experiment", input.string()}, {"cell", pick + 1}};
    }
    synchronize(device);
    const double load_s = seconds_since(t_load);

    c10::InferenceMode guard;
    const auto q = quantizers().get(quantizer_cfg.name).create(quantizer_cfg.options);
    if (status st = q->supports(loaded.model); !st.ok()) fail("not supported [{}]: {}", quantizer_cfg.name, st.reason);
    quantize_context qctx;
    qctx.tok = loaded.tok.get();
    qctx.data = data;
    qctx.run_dir = args_.report_dir.empty() ? fs::path(output.string() + ".reports") : fs::path(args_.report_dir);
    json datasets = json::object();
    qctx.add_dataset = [&datasets](const std::string &name, json info) { datasets[name] = std::move(info); };

    const auto t_quant = std::chrono::steady_clock::now();
    json report = q->apply(loaded.model, qctx);
    synchronize(device);
    const double quant_s = seconds_since(t_quant);

    json a8 = json::array();
    for (const auto *l : loaded.model.linears())
        if (l->act_quant.bits >= 8) a8.push_back(l->name);
    const json metadata = {{"method", quantizer_cfg.name}, {"options", quantizer_cfg.options}, {"source", source},
                           {"datasets", datasets}, {"a8_layers", a8}, {"quantization", report}};
    if (output.has_parent_path()) fs::create_directories(output.parent_path());
    const auto t_pack = std::chrono::steady_clock::now();
    const packed_write_summary written = write_packed_checkpoint(output, loaded.model, metadata);
    const double pack_s = seconds_since(t_pack);

    std::cout << fmt::format("wrote {}\n", output.string())
              << fmt::format("  method            {} {}\n", quantizer_cfg.name, quantizer_cfg.options.dump())
              << fmt::format("  file              {:.3f} GB ({} bytes)\n", double(written.file_bytes) / 1e9, written.file_bytes)
              << fmt::format("  linear weights    {:.3f} GB for {} weights: {:.4f} bits/weight (codes + scales + zero points)\n",
                             double(written.linear_bytes) / 1e9, written.linear_weights, written.bits_per_linear_weight())
              << fmt::format("  other tensors     {:.3f} GB (embeddings, norms, lm_head, unquantized linears)\n",
                             double(written.other_bytes) / 1e9)
              << fmt::format("  A8 layers         {}\n", a8.size())
              << fmt::format("  time              load {:.2f} s, quantize {:.2f} s, pack+write {:.2f} s\n", load_s, quant_s, pack_s);
    if (fs::exists(qctx.run_dir)) std::cout << fmt::format("  reports           {}\n", qctx.run_dir.string());
    return 0;
}

std::unique_ptr<quantize_command> add_quantize_command(CLI::App &app) { return std::make_unique<quantize_command>(app); }

} // namespace qb::cli
