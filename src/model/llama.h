// LLaMA-family decoder on LibTorch tensors (no torch::nn modules: plain tensors keep compile
// times short and make every decoder linear an explicit, replaceable object).
#pragma once
#include "model/llama_config.h"

#include <ATen/core/Tensor.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace qb {

// How a linear layer computes y = x W^T (+ b) once a back-end has bound it; quantized layers
// hold whatever packed form their back-end needs.
struct linear_runtime {
    virtual ~linear_runtime() = default;
    virtual at::Tensor forward(const at::Tensor &x) const = 0; // x [..., K] -> [..., N]
    virtual std::string describe() const = 0;
};

// Integer weights with per-group scales: w ≈ (q - zero) * scale, groups along K.
struct quantized_weight {
    at::Tensor q;           // [N, K] int8 container of the integer values (packed storage comes with issue 5)
    at::Tensor scales;      // [N, K / group] fp32
    at::Tensor zero_points; // [N, K / group] fp32, undefined when symmetric
    int bits = 8;
    int64_t group_size = 0; // 0 = one group per output row (per-channel)
    at::Tensor dequantize() const; // reference dequantization, fp32 [N, K]
};

// Dynamic fake quantization of a linear's input activations, recomputed at every forward
// (symmetric: scale = absmax / (2^(bits-1) - 1) per token or per token-group along K, round half to
// even, fp32 scales; formulas in src/quant/primitives.h). Set by a quantizer; the dense path and
// torch_ref apply it, kernel back-ends refuse a layer whose setting they cannot execute.
struct activation_quant {
    int bits = 0;           // 0 = activations stay in the model dtype (A16)
    int64_t group_size = 0; // 0 = one scale per token over all of K; g = groups of g along K
    bool enabled() const { return bits > 0; }
    // x [..., K] -> quantize-dequantize in x's dtype (x itself when disabled). Defined in
    // src/quant/primitives.cpp, beside the formulas.
    at::Tensor apply(const at::Tensor &x) const;
    std::string describe() const; // "a16", "a8 per-token", "a6 g128"
};

struct linear_layer {
    std::string name;                     // stable: "layers.3.mlp.down_proj"
    at::Tensor weight;                    // [N, K] full-precision weight (model dtype)
    at::Tensor bias;                      // [N] or undefined
    std::optional<quantized_weight> qweight;        // set by a quantizer
    activation_quant act_quant;                    // set by a quantizer; default: none
    std::shared_ptr<const linear_runtime> runtime; // set by a back-end; null = dense weight

    int64_t out_features() const { return weight.size(0); }
    int64_t in_features() const { return weight.size(1); }
    at::Tensor forward(const at::Tensor &x) const;
};

struct decoder_layer {
    at::Tensor attn_norm, ffn_norm; // [dim]
    linear_layer q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj;
};

// Keys and values of past positions, per layer, preallocated to a maximum length so that decoding
// never reallocates: k[l], v[l] are [B, n_kv_heads, max_len, head_dim] in the model dtype.
struct kv_cache {
    std::vector<at::Tensor> k, v;
    int64_t length = 0;  // positions filled
    int64_t capacity() const { return k.empty() ? 0 : k.front().size(2); }
};

class llama_model {
public:
    llama_config config;
    at::Tensor tok_embeddings; // [vocab, dim]
    at::Tensor final_norm;     // [dim]
    at::Tensor lm_head;        // [vocab, dim]; the same tensor as tok_embeddings when tied
    std::vector<decoder_layer> layers;
    at::Tensor rope_cos, rope_sin; // [max_seq_len, head_dim / 2] fp32 on the model's device

    // tokens [B, T] int64 → logits [B, T, vocab] in fp32. Without a cache: causal prefill from
    // position 0. With one: the tokens continue the cached positions (prefill of a prompt into an
    // empty cache, or one new token per step when decoding); the cache is extended.
    at::Tensor forward(const at::Tensor &tokens, kv_cache *cache = nullptr) const;

    kv_cache make_cache(int64_t batch, int64_t max_len) const;
    // Fills rope_cos/rope_sin from the config (theta, scaling) on the model's device; loaders call it.
    void prepare_rope();

    // Every decoder linear with its stable name, in execution order.
    std::vector<linear_layer *> linears();
    std::vector<const linear_layer *> linears() const;
    at::Device device() const;
    at::ScalarType dtype() const;
};

// Inverse frequencies of RoPE for the config: theta^(-2i/d), with LLaMA-3.1 scaling when set.
std::vector<double> rope_inverse_frequencies(const llama_config &config);

// Seeded random weights for any shape (latency work, tests). Weights ~ N(0, 1/fan_in) so that
// activations keep unit scale through depth; norm gains 1 + N(0, 0.1^2); never zero. Generated
// on the CPU in fp32 from `seed`, so the same seed gives the same model on every machine.
llama_model llama_make_synthetic(const llama_config &config, uint64_t seed, at::ScalarType dtype, at::Device device);

// Parses "fp32" / "fp16" / "bf16".
at::ScalarType dtype_from_name(const std::string &name);
const char *dtype_name(at::ScalarType dtype);

} // namespace qb
