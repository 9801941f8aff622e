// llama2.c checkpoints (Karpathy's run.c "version 0" .bin), read in place.
//
// Layout: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; a
// negative vocab_size means the classifier is stored separately), then float32 arrays:
// token_embedding [vocab, dim], rms_att [L, dim], wq [L, dim, dim], wk [L, kv_dim, dim],
// wv [L, kv_dim, dim], wo [L, dim, dim], rms_ffn [L, dim], w1 [L, hidden, dim],
// w2 [L, dim, hidden], w3 [L, hidden, dim], rms_final [dim], freq_cis_real and freq_cis_imag
// [seq_len, head_dim/2] (legacy, skipped), then wcls [vocab, dim] when not shared.
//
// The arrays are exposed under Hugging Face LLaMA names (model.embed_tokens.weight,
// model.layers.{i}.self_attn.q_proj.weight, ..., model.norm.weight, lm_head.weight when not
// shared). The q_proj / k_proj rows stay in llama2.c's order, which is for interleaved RoPE
// (the same as GGUF's): gguf_unpermute_qk_rows (n_heads / n_kv_heads) turns them into HF's
// half-split order.
#pragma once
#include "formats/mapped_file.h"
#include "formats/tensor_view.h"

#include <filesystem>

namespace qb {

struct llama2c_header {
    int64_t dim = 0;
    int64_t hidden_dim = 0;
    int64_t n_layers = 0;
    int64_t n_heads = 0;
    int64_t n_kv_heads = 0;
    int64_t vocab_size = 0; // the absolute value of the stored field
    int64_t seq_len = 0;
    bool shared_classifier = true; // the stored vocab_size was positive

    int64_t head_dim() const { return dim / n_heads; }
    int64_t kv_dim() const { return head_dim() * n_kv_heads; }
};

class llama2c_checkpoint {
public:
    // Maps and validates the file: the header's values, and the file size exactly (a short or
    // long file says by how many bytes, and in which array it ends). Throws qb::error.
    explicit llama2c_checkpoint(const std::filesystem::path &path);

    const llama2c_header &header() const { return header_; }
    const tensor_map &tensors() const { return tensors_; }
    const std::filesystem::path &path() const { return file_.path(); }

private:
    mapped_file file_;
    llama2c_header header_;
    tensor_map tensors_;
};

} // namespace qb
