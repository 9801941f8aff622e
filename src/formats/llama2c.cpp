#include "formats/llama2c.h"

#include "core/error.h"

#include <fmt/format.h>

namespace qb {

namespace fs = std::filesystem;

namespace {

constexpr uint64_t header_bytes = 7 * 4;
// run.c's later export formats (version 1, 2) start with this magic ("ak42") instead.
constexpr uint32_t llama2c_v1_magic = 0x616b3432;

struct array_spec {
    std::string name;            // HF name ("" for the skipped freq_cis arrays)
    std::string file_name;       // llama2.c's name, for messages
    std::vector<int64_t> shape;  // of one tensor
    int64_t count = 1;           // tensors stored back to back (one per layer)
};

} // namespace

llama2c_checkpoint::llama2c_checkpoint(const fs::path &path) : file_(path), tensors_(path.string()) {
    const std::string where = path.string();
    const uint64_t size = file_.size();
    if (size < header_bytes) fail("{}: file is {} bytes, too small for the 28-byte llama2.c header", where, size);
    int32_t h[7];
    std::memcpy(h, file_.data(), sizeof h);
    if (static_cast<uint32_t>(h[0]) == llama2c_v1_magic)
        fail("{}: a llama2.c version {} export (magic \"ak42\"); qbench reads the legacy version 0 layout (export.py --version 0)", where,
             h[1]);
    auto &hd = header_;
    hd.dim = h[0];
    hd.hidden_dim = h[1];
    hd.n_layers = h[2];
    hd.n_heads = h[3];
    hd.n_kv_heads = h[4];
    hd.vocab_size = h[5] < 0 ? -static_cast<int64_t>(h[5]) : h[5];
    hd.shared_classifier = h[5] > 0;
    hd.seq_len = h[6];
    const auto header_text = fmt::format("dim={} hidden_dim={} n_layers={} n_heads={} n_kv_heads={} vocab_size={} seq_len={}", h[0], h[1],
                                         h[2], h[3], h[4], h[5], h[6]);
    if (hd.dim <= 0 || hd.hidden_dim <= 0 || hd.n_layers <= 0 || hd.n_heads <= 0 || hd.n_kv_heads <= 0 || hd.vocab_size == 0 ||
        hd.seq_len <= 0)
        fail("{}: header ({}) has a zero or negative size: not a llama2.c checkpoint?", where, header_text);
    if (hd.dim % hd.n_heads != 0 || hd.n_heads % hd.n_kv_heads != 0 || hd.head_dim() % 2 != 0)
        fail("{}: header ({}): dim must split into n_heads heads of an even size, and n_heads must be a multiple of n_kv_heads", where,
             header_text);

    const int64_t d = hd.dim, f = hd.hidden_dim, kv = hd.kv_dim(), L = hd.n_layers;
    std::vector<array_spec> arrays = {
        {"model.embed_tokens.weight", "token_embedding", {hd.vocab_size, d}},
        {"model.layers.{}.input_layernorm.weight", "rms_att", {d}, L},
        {"model.layers.{}.self_attn.q_proj.weight", "wq", {d, d}, L},
        {"model.layers.{}.self_attn.k_proj.weight", "wk", {kv, d}, L},
        {"model.layers.{}.self_attn.v_proj.weight", "wv", {kv, d}, L},
        {"model.layers.{}.self_attn.o_proj.weight", "wo", {d, d}, L},
        {"model.layers.{}.post_attention_layernorm.weight", "rms_ffn", {d}, L},
        {"model.layers.{}.mlp.gate_proj.weight", "w1", {f, d}, L},
        {"model.layers.{}.mlp.down_proj.weight", "w2", {d, f}, L},
        {"model.layers.{}.mlp.up_proj.weight", "w3", {f, d}, L},
        {"model.norm.weight", "rms_final", {d}},
        {"", "freq_cis_real", {hd.seq_len, hd.head_dim() / 2}},
        {"", "freq_cis_imag", {hd.seq_len, hd.head_dim() / 2}},
    };
    if (!hd.shared_classifier) arrays.push_back({"lm_head.weight", "wcls", {hd.vocab_size, d}});

    // Every int32 of the header is < 2^31, so each array is < 2^93 bytes in principle: total in
    // long double first to refuse absurd headers before any int64 arithmetic can overflow.
    long double total_ld = header_bytes;
    for (const auto &a : arrays) {
        long double n = 4.0L * a.count;
        for (int64_t s : a.shape) n *= static_cast<long double>(s);
        total_ld += n;
    }
    if (total_ld > 1e15L) fail("{}: header ({}) describes {:.3g} bytes of weights: not a llama2.c checkpoint?", where, header_text, static_cast<double>(total_ld));

    uint64_t offset = header_bytes;
    for (const auto &a : arrays) {
        int64_t n = 1;
        for (int64_t s : a.shape) n *= s;
        const uint64_t one = static_cast<uint64_t>(n) * 4;
        const uint64_t all = one * static_cast<uint64_t>(a.count);
        if (offset + all > size) {
            fail("{}: file is {} bytes, the header ({}) needs {}: {} bytes missing, the file ends inside {} (bytes [{}, {}))", where, size,
                 header_text, static_cast<uint64_t>(total_ld), static_cast<uint64_t>(total_ld) - size, a.file_name, offset, offset + all);
        }
        for (int64_t k = 0; k < a.count && !a.name.empty(); ++k) {
            tensor_view t;
            t.name = a.count > 1 || a.name.find("{}") != std::string::npos ? fmt::format(fmt::runtime(a.name), k) : a.name;
            t.dtype = tensor_dtype::f32;
            t.shape = a.shape;
            t.data = file_.data() + offset + static_cast<uint64_t>(k) * one;
            t.bytes = one;
            tensors_.add(std::move(t));
        }
        offset += all;
    }
    if (offset != size)
        fail("{}: file is {} bytes, the header ({}) accounts for {}: {} extra bytes after the last array ({}){}", where, size, header_text,
             offset, size - offset, arrays.back().file_name,
             hd.shared_classifier && size - offset == static_cast<uint64_t>(hd.vocab_size * d * 4)
                 ? "; that is exactly one [vocab, dim] classifier: was vocab_size meant to be negative (unshared)?"
                 : "");
}

} // namespace qb
