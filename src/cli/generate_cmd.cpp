#include "cli/generate_cmd.h"

#include "core/error.h"
#include "core/experiment.h"
#include "core/paths.h"
#include "harness/catalog.h"
#include "model/formats.h"
#include "model/generate.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <fmt/format.h>

#include <iostream>

namespace qb::cli {

CLI::App *add_generate_command(CLI::App &app, generate_args &a) {
    auto *cmd = app.add_subcommand("generate", "generate text from a model (greedy by default) and report prefill / decode speed");
    cmd->add_option("model", a.model_file, "YAML file with a model: block (configs/checkpoints/*.yaml or an experiment)")
        ->required()
        ->check(CLI::ExistingFile);
    cmd->add_option("-p,--prompt", a.prompt, "prompt text (BOS is added as the tokenizer does)");
    cmd->add_option("-n,--max-new-tokens", a.max_new_tokens, "tokens to generate")->check(CLI::Range(int64_t(1), int64_t(1) << 20));
    cmd->add_option("--prompt-tokens", a.prompt_tokens, "use a seeded random prompt of N tokens instead (models without a tokenizer)");
    cmd->add_option("--device", a.device, "cpu | cuda")->check(CLI::IsMember({"cpu", "cuda"}));
    cmd->add_option("--dtype", a.dtype, "fp32 | fp16 | bf16")->check(CLI::IsMember({"fp32", "fp16", "bf16"}));
    cmd->add_option("--temperature", a.temperature, "0 = greedy; > 0 samples")->check(CLI::NonNegativeNumber);
    cmd->add_option("--top-p", a.top_p, "nucleus sampling mass (with --temperature)")->check(CLI::Range(0.0, 1.0));
    cmd->add_option("--seed", a.seed, "seed of sampling and of a random prompt");
    cmd->add_option("--data-dir", a.data_dir, "where relative model paths are looked up (default: $QBENCH_DATA_DIR or <source>/../shared)");
    cmd->add_flag("-q,--quiet", a.quiet, "print only the speed line");
    cmd->add_flag("--eager", a.eager, "on CUDA, run each decode step operation by operation instead of replaying one captured CUDA graph");
    cmd->add_flag("--cudnn-sdpa", a.cudnn_sdpa, "let attention use cuDNN's SDPA (off: it plans per shape, and decode changes shape every step)");
    return cmd;
}

int run_generate(const generate_args &a) {
    if (a.device == "cuda" && !at::globalContext().hasCUDA()) fail("--device cuda: no CUDA device is available (this build or machine has none)");
    at::globalContext().setSDPUseCuDNN(a.cudnn_sdpa);
    const component_config model = model_block_load(a.model_file, registered_catalog());
    const data_dir_choice data = resolve_data_dir(a.data_dir, "", a.model_file);
    model_load_context ctx{config_dir(), data.path, at::Device(a.device), dtype_from_name(a.dtype)};
    loaded_model lm = model_formats().get(model.name).load(model.options, ctx);

    std::vector<int32_t> prompt;
    if (a.prompt_tokens > 0) {
        auto gen = at::make_generator<at::CPUGeneratorImpl>(a.seed);
        auto ids = at::randint(lm.model.config.vocab_size, {a.prompt_tokens}, gen, at::TensorOptions().dtype(at::kLong));
        for (int64_t i = 0; i < a.prompt_tokens; ++i) prompt.push_back(int32_t(ids[i].item<int64_t>()));
    } else {
        if (!lm.tok) fail("{}: this model has no tokenizer; pass --prompt-tokens N for a random prompt", a.model_file);
        prompt = lm.tok->encode(a.prompt, lm.tok->add_bos_default());
    }

    generate_options o;
    o.max_new_tokens = a.max_new_tokens;
    o.temperature = a.temperature;
    o.top_p = a.top_p;
    o.seed = a.seed;
    o.decode_graph = !a.eager;
    o.stop_id = lm.tok && a.prompt_tokens == 0 ? lm.tok->eos_id() : -1;
    const bool stream = lm.tok && !a.quiet;
    if (stream && a.prompt_tokens == 0) std::cout << a.prompt << std::flush;
    // Tokens decode to text only in context (SentencePiece spaces, UTF-8 split across byte
    // tokens): print the growing decoded suffix rather than tokens one by one.
    std::vector<int32_t> all = prompt; // prompt + tokens produced so far
    const std::string base = stream ? lm.tok->decode(prompt) : std::string();
    std::string shown;
    auto on_token = [&](int32_t id) {
        if (!stream) return;
        all.push_back(id);
        const std::string text = lm.tok->decode(all);
        if (text.size() > base.size() + shown.size() && text.compare(0, base.size(), base) == 0) {
            std::cout << text.substr(base.size() + shown.size()) << std::flush;
            shown = text.substr(base.size());
        }
    };
    const generate_result r = generate(lm.model, prompt, o, on_token);
    if (stream) std::cout << "\n";
    const double prefill_tps = double(prompt.size()) / (r.prefill_ms / 1e3);
    const double decode_tps = r.decode_steps > 0 ? double(r.decode_steps) / (r.decode_ms / 1e3) : 0.0;
    std::cerr << fmt::format("{} on {} {}: prefill {} tokens in {:.2f} ms ({:.1f} tok/s); decode {} steps in {:.2f} ms ({:.1f} tok/s, "
                             "{:.3f} ms/token{})\n",
                             lm.model.config.name, a.device, a.dtype, prompt.size(), r.prefill_ms, prefill_tps, r.decode_steps, r.decode_ms,
                             decode_tps, r.decode_steps > 0 ? r.decode_ms / double(r.decode_steps) : 0.0,
                             r.used_graph ? fmt::format("; CUDA graph of {} kernels per step, captured in {:.0f} ms", r.graph_kernels, r.graph_capture_ms) : std::string());
    return 0;
}

} // namespace qb::cli
