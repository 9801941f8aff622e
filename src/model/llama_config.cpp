#include "model/llama_config.h"

#include "core/error.h"
#include "core/text.h"

#include <algorithm>

namespace qb {

int64_t llama_config::linear_parameters() const {
    const int64_t attn = dim * dim * 2 + dim * kv_dim() * 2; // q, o, k, v
    const int64_t mlp = 3 * dim * hidden_dim;
    return n_layers * (attn + mlp);
}

int64_t llama_config::total_parameters() const {
    int64_t embeddings = vocab_size * dim * (tied_embeddings ? 1 : 2);
    int64_t norms = (2 * n_layers + 1) * dim;
    int64_t bias = qkv_bias ? n_layers * (dim + 2 * kv_dim()) : 0;
    return linear_parameters() + embeddings + norms + bias;
}

void llama_config::validate() const {
    if (dim <= 0 || hidden_dim <= 0 || n_layers <= 0 || n_heads <= 0 || n_kv_heads <= 0 || vocab_size <= 0)
        fail("model config '{}': dim, hidden_dim, n_layers, n_heads, n_kv_heads and vocab_size must be positive", name);
    if (dim % n_heads != 0) fail("model config '{}': dim {} is not a multiple of n_heads {}", name, dim, n_heads);
    if (n_heads % n_kv_heads != 0)
        fail("model config '{}': n_heads {} is not a multiple of n_kv_heads {} (grouped-query attention)", name, n_heads, n_kv_heads);
    if (head_dim() % 2 != 0) fail("model config '{}': head_dim {} must be even for RoPE", name, head_dim());
    if (rope_scaling_factor > 0 && rope_high_freq_factor <= rope_low_freq_factor)
        fail("model config '{}': rope_high_freq_factor {} must exceed rope_low_freq_factor {}", name, rope_high_freq_factor,
             rope_low_freq_factor);
}

namespace {

// Every serialized field once, for both directions (to_json and llama_config_from_json): a field
// added to the struct is added here and nowhere else. The json is what model identities and
// checkpoint keys hash, so the names are a format.
template <class Config, class F>
void visit_fields(Config &c, F &&f) {
    f("name", c.name);
    f("dim", c.dim);
    f("hidden_dim", c.hidden_dim);
    f("n_layers", c.n_layers);
    f("n_heads", c.n_heads);
    f("n_kv_heads", c.n_kv_heads);
    f("vocab_size", c.vocab_size);
    f("max_seq_len", c.max_seq_len);
    f("norm_eps", c.norm_eps);
    f("rope_theta", c.rope_theta);
    f("rope_style", c.rope);
    f("tied_embeddings", c.tied_embeddings);
    f("qkv_bias", c.qkv_bias);
    f("rope_scaling_factor", c.rope_scaling_factor);
    f("rope_low_freq_factor", c.rope_low_freq_factor);
    f("rope_high_freq_factor", c.rope_high_freq_factor);
    f("rope_original_max_seq_len", c.rope_original_max_seq_len);
}

json field_json(const rope_style &r) { return r == rope_style::half_split ? "half_split" : "interleaved"; }
template <class T>
json field_json(const T &v) {
    return v;
}
void read_field(const json &j, rope_style &r) { r = j == "interleaved" ? rope_style::interleaved : rope_style::half_split; }
template <class T>
void read_field(const json &j, T &v) {
    v = j.get<T>();
}

} // namespace

json llama_config::to_json() const {
    json j = json::object();
    visit_fields(*this, [&](const char *key, const auto &v) { j[key] = field_json(v); });
    return j;
}

llama_config llama_config_from_json(const json &j) {
    llama_config c;
    visit_fields(c, [&](const char *key, auto &v) { read_field(j.at(key), v); });
    return c;
}

const std::vector<option_spec> &llama_config_options() {
    static const std::vector<option_spec> specs = {
        {"name", option_type::string, "", "display name (default: the file name)"},
        {"dim", option_type::integer, json(), "model width", 1, 1 << 20},
        {"hidden_dim", option_type::integer, json(), "MLP width", 1, 1 << 22},
        {"n_layers", option_type::integer, json(), "decoder layers", 1, 1024},
        {"n_heads", option_type::integer, json(), "attention heads", 1, 1024},
        {"n_kv_heads", option_type::integer, 0, "key/value heads (0 = n_heads)", 0, 1024},
        {"vocab_size", option_type::integer, json(), "vocabulary size", 1, 1 << 24},
        {"max_seq_len", option_type::integer, 2048, "context length", 1, 1 << 22},
        {"norm_eps", option_type::number, 1e-5, "RMSNorm epsilon", 0, 1},
        {"rope_theta", option_type::number, 10000.0, "RoPE base", 1, 1e9},
        {"rope_style", option_type::choice, "half_split", "RoPE pairing convention", -INFINITY, INFINITY, {"half_split", "interleaved"}},
        {"tied_embeddings", option_type::boolean, false, "lm_head shares the token embedding"},
        {"qkv_bias", option_type::boolean, false, "q/k/v projections have biases (Qwen2)"},
        {"rope_scaling_factor", option_type::number, 0.0, "LLaMA-3.1 RoPE scaling factor (0 = no scaling)", 0, 1024},
        {"rope_low_freq_factor", option_type::number, 1.0, "LLaMA-3.1 RoPE scaling: low-frequency factor", 0, 1024},
        {"rope_high_freq_factor", option_type::number, 4.0, "LLaMA-3.1 RoPE scaling: high-frequency factor", 0, 1024},
        {"rope_original_max_seq_len", option_type::integer, 8192, "LLaMA-3.1 RoPE scaling: original context", 1, 1 << 22},
        {"description", option_type::string, "", "where the shape comes from"},
    };
    return specs;
}

llama_config llama_config_load(const std::filesystem::path &file) {
    config_node root = config_load_file(file);
    auto alternatives = option_expand(&root, llama_config_options(), "", root.mark);
    if (alternatives.size() != 1) throw config_error(root.mark, "", "a model config describes one model: lists are not allowed here");
    json j = alternatives.front();
    if (j["name"].get<std::string>().empty()) j["name"] = file.stem().string();
    if (j["n_kv_heads"].get<int64_t>() == 0) j["n_kv_heads"] = j["n_heads"];
    llama_config c = llama_config_from_json(j);
    try {
        c.validate();
    } catch (const error &e) {
        throw config_error(root.mark, "", e.what());
    }
    return c;
}

llama_config llama_config_find(const std::string &name, const std::filesystem::path &config_dir, std::filesystem::path *found_file) {
    namespace fs = std::filesystem;
    const fs::path dir = config_dir / "models";
    const fs::path file = dir / (name + ".yaml");
    const fs::path direct = name; // a path to a config file of one's own
    for (const fs::path &candidate : {file, direct})
        if ((candidate == file || name.find('/') != std::string::npos) && fs::is_regular_file(candidate)) {
            if (found_file) *found_file = candidate;
            return llama_config_load(candidate);
        }
    std::vector<std::string> names;
    std::error_code ec;
    for (const auto &e : fs::directory_iterator(dir, ec))
        if (e.path().extension() == ".yaml") names.push_back(e.path().stem().string());
    fail("unknown model config '{}' (looked for {}).{}", name, file.string(), suggestion_hint(name, names));
}

} // namespace qb
