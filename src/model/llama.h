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

// Per-token, per-128-group codes of a linear's input activations, written by the kernel that
// produced the input (RMSNorm, SiLU x up) instead of a quantizer kernel of the linear's own: chained
// layer to layer, such a quantizer is a serial step between the producer and the GEMM.
// `layout` is agreed between the runtime that asks (linear_runtime::codes_wanted) and the back-end's
// activation_producer; the model only passes it on.
struct act_codes_request {
    int bits = 0; // 0: the runtime takes fp16 input only
    int layout = 0;
    bool operator==(const act_codes_request &) const = default;
};
struct act_codes {
    act_codes_request format;
    at::Tensor q;      // [M, K] int8 (M = tokens, batch flattened)
    at::Tensor scales; // [K / 128, M] fp32
};

// How a linear layer computes y = x W^T (+ b) once a back-end has bound it; quantized layers
// hold whatever packed form their back-end needs.
struct linear_runtime {
    virtual ~linear_runtime() = default;
    virtual at::Tensor forward(const at::Tensor &x) const = 0; // x [..., K] -> [..., N]
    virtual std::string describe() const = 0;
    // The codes this runtime multiplies directly for m input tokens, if any (bits 0: none).
    virtual act_codes_request codes_wanted(int64_t /*m*/) const { return {}; }
    // y from codes in the format codes_wanted(m) named; `prefix` is the input's leading shape
    // (its product = m): the output is [prefix..., N].
    virtual at::Tensor forward_codes(const act_codes &codes, at::IntArrayRef prefix) const;
};

// The kernels that produce a decoder linear's input, writing its codes as well (a back-end whose
// runtimes take codes offers one; llama_model::producer). Each computes what the model's own
// operations compute (rms_norm(x) * gain; silu(gate) * up), possibly differing by one fp16 ulp where
// their fp32 operations round in another order, and quantizes that. y, when given, receives the fp16
// values the codes were made from.
struct activation_producer {
    virtual ~activation_producer() = default;
    virtual act_codes rms_norm_codes(const at::Tensor &x, const at::Tensor &gain, double eps, act_codes_request want, at::Tensor *y = nullptr) const = 0;
    // The residual add before the norm: *sum = x + delta (the model's fp16 add), then rms_norm_codes of
    // it. This default runs the two apart; a producer with a kernel for both overrides it.
    virtual act_codes add_rms_norm_codes(const at::Tensor &x, const at::Tensor &delta, const at::Tensor &gain, double eps, act_codes_request want,
                                         at::Tensor &sum) const;
    virtual act_codes silu_mul_codes(const at::Tensor &gate, const at::Tensor &up, act_codes_request want, at::Tensor *y = nullptr) const = 0;
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
    // Where the back-end binds them as one GEMM (fuse_projections, src/backends/backend.h): [q | k | v]
    // and [gate | up] side by side along the output. The forward pass then runs these and reads
    // each projection as a view of the output; null: one GEMM per projection.
    std::shared_ptr<const linear_runtime> qkv, gate_up;
};

// Keys and values of past positions, per layer, preallocated to a maximum length so that decoding
// never reallocates: k[l], v[l] are [B, n_kv_heads, max_len, head_dim] in the model dtype.
struct kv_cache {
    std::vector<at::Tensor> k, v;
    int64_t length = 0;  // positions filled
    at::Tensor step_scratch; // working memory of forward_step's fused attention kernel (made on first use)
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
    // Set with the linears' back-end (harness runner) when it has one: where every linear reading
    // the output of an RMSNorm or of SiLU x up asks for the same codes (codes_wanted), that kernel
    // writes them and the linears multiply them directly. Null: ATen operations, and each linear
    // quantizes its own input.
    std::shared_ptr<const activation_producer> producer;

    // tokens [B, T] int64 → logits [B, T, vocab] in fp32. Without a cache: causal prefill from
    // position 0. With one: the tokens continue the cached positions (prefill of a prompt into an
    // empty cache, or one new token per step when decoding); the cache is extended.
    at::Tensor forward(const at::Tensor &tokens, kv_cache *cache = nullptr) const;

    // One decode step whose every operation has the same shapes and arguments at every position, so
    // that it can be captured once as a CUDA graph and replayed per token (decode_step_graph): the
    // position is read from `pos` ([1] int64 on the model's device). With `fused`, where
    // step_kernels.h says they can run, attention is one kernel a layer (RoPE, the cache write at pos
    // and attention over positions 0..pos) and RMSNorm and SiLU x up one kernel each; otherwise
    // ATen operations: the new keys
    // and values written at that index of the cache (index_copy_), attention over the cache's whole
    // capacity with positions > pos masked out. tokens [B, 1] -> logits [B, 1, vocab] in fp32: what
    // forward(tokens, &cache) gives at cache.length == pos, up to the attention's summation order
    // (the fused kernel: fp32 in its own order; ATen: over the masked, zero-weighted positions too)
    // and, with the fused RMSNorm, its mean's (a y may differ by one fp16 ulp).
    // Leaves cache.length alone (the caller keeps it).
    at::Tensor forward_step(const at::Tensor &tokens, const at::Tensor &pos, kv_cache &cache, bool fused = true) const;

    // Zero-filled: forward_step's masked attention still multiplies the unused positions' values by
    // a zero weight, and 0 * NaN from uninitialized memory would be NaN.
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
