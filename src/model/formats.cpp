#include "model/formats.h"

#include "model/checkpoints.h"
#include "quant/packed_checkpoint.h"

#include "core/log.h"
#include "core/sha256.h"

namespace qb {
namespace {

loaded_model load_synthetic(const json &options, const model_load_context &ctx) {
    std::filesystem::path file;
    llama_config config = llama_config_find(options["config"], ctx.config_dir, &file);
    const uint64_t seed = options["seed"];
    log_info("model: synthetic {} ({:.3g} M parameters, seed {}) on {} in {}", config.name, config.total_parameters() / 1e6, seed,
             ctx.device.str(), dtype_name(ctx.dtype));
    loaded_model out{llama_make_synthetic(config, seed, ctx.dtype, ctx.device), json::object(), nullptr, ""};
    out.identity = json_hash(json{{"format", "synthetic"}, {"config", config.to_json()}, {"seed", seed}});
    // The architecture file is an input like a weight file: its hash pins the shape.
    out.inputs["model_config"] = {{"path", file.string()}, {"sha256", sha256_file_hex(file)}, {"config", config.to_json()}};
    return out;
}

} // namespace

const registry<model_format_entry> &model_formats() {
    static const registry<model_format_entry> r(
        component_kind::model_format,
        {
            {{"synthetic",
              "seeded random LLaMA weights for any architecture in configs/models/ (latency work, tests; no real text)",
              {
                  {"name", option_type::string, "", "display name (default: the config name)"},
                  {"config", option_type::string, json(), "architecture: a file name in configs/models/ without .yaml"},
                  {"seed", option_type::integer, 0, "seed of the weights", 0, 9007199254740991.0},
              }},
             load_synthetic},
            {{"llama2c",
              "llama2.c checkpoint (.bin, e.g. stories260K) with a tokenizer file",
              {
                  {"name", option_type::string, "", "display name (default: the file name)"},
                  {"path", option_type::string, json(), "the .bin: absolute, pkg:<package>/<file>, or relative to the data dir"},
                  {"tokenizer", option_type::string, "", "tokenizer.bin / tokenizer.model / tokenizer.json (none: no text evaluations)"},
                  {"max_seq_len", option_type::integer, 0, "cap the context length (0 = the file's)", 0, 1 << 22},
              }},
             load_llama2c},
            {{"hf",
              "Hugging Face folder: config.json + model.safetensors (single or sharded), fp32/fp16/bf16; tokenizer.json or tokenizer.model",
              {
                  {"name", option_type::string, "", "display name (default: the folder name)"},
                  {"path", option_type::string, json(), "the folder: absolute, pkg:<package>/<dir>, or relative to the data dir"},
                  {"tokenizer", option_type::string, "", "tokenizer file (default: the folder's tokenizer.json / tokenizer.model)"},
                  {"max_seq_len", option_type::integer, 0, "cap the context length (0 = max_position_embeddings)", 0, 1 << 22},
              }},
             load_hf},
            {{"gguf",
              "GGUF v2/v3 LLaMA file (F32/F16/BF16/Q8_0/Q4_0/Q4_1/Q5_x/Qx_K dequantized), embedded tokenizer",
              {
                  {"name", option_type::string, "", "display name (default: general.name)"},
                  {"path", option_type::string, json(), "the .gguf: absolute, pkg:<package>/<file>, or relative to the data dir"},
                  {"max_seq_len", option_type::integer, 0, "cap the context length (0 = llama.context_length)", 0, 1 << 22},
              }},
             load_gguf},
            {{"packed",
              "qbench packed checkpoint (.qbq from `qbench quantize`): bit-packed low-bit weights, fp16 scales, activation settings",
              {
                  {"name", option_type::string, "", "display name (default: the file name)"},
                  {"path", option_type::string, json(), "the .qbq: absolute, pkg:<package>/<file>, or relative to the data dir"},
                  {"tokenizer", option_type::string, "", "tokenizer file of the source model (none: no text evaluations)"},
              }},
             load_packed_model},
        });
    return r;
}

} // namespace qb
