#include "model/llama.h"

#include "core/error.h"
#include "model/step_kernels.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <initializer_list>
#include <tuple>
#include <utility>

namespace qb {

at::ScalarType dtype_from_name(const std::string &name) {
    if (name == "fp32") return at::kFloat;
    if (name == "fp16") return at::kHalf;
    if (name == "bf16") return at::kBFloat16;
    fail("unknown dtype '{}' (expected fp32, fp16 or bf16)", name);
}

const char *dtype_name(at::ScalarType dtype) {
    switch (dtype) {
    case at::kFloat: return "fp32";
    case at::kHalf: return "fp16";
    case at::kBFloat16: return "bf16";
    default: return "other";
    }
}

at::Tensor quantized_weight::dequantize() const {
    const int64_t n = q.size(0), k = q.size(1);
    const int64_t g = group_size == 0 ? k : group_size;
    auto qf = q.to(at::kFloat).view({n, k / g, g});
    auto s = scales.to(at::kFloat).view({n, k / g, 1});
    if (zero_points.defined()) qf = qf - zero_points.to(at::kFloat).view({n, k / g, 1});
    return (qf * s).view({n, k});
}

act_codes activation_producer::add_rms_norm_codes(const at::Tensor &x, const at::Tensor &delta, const at::Tensor &gain, double eps,
                                                  act_codes_request want, at::Tensor &sum) const {
    sum = x + delta;
    return rms_norm_codes(sum, gain, eps, want);
}

at::Tensor linear_runtime::forward_codes(const act_codes &, at::IntArrayRef) const {
    fail("{}: takes no activation codes (codes_wanted says none)", describe());
}

at::Tensor linear_layer::forward(const at::Tensor &x) const {
    if (runtime) return runtime->forward(x);
    // No back-end bound: the full-precision weight, with the layer's activation fake-quant (if any).
    return at::linear(act_quant.apply(x), weight, bias.defined() ? std::optional<at::Tensor>(bias) : std::nullopt);
}

namespace {

at::Tensor rms_norm(const at::Tensor &x, const at::Tensor &gain, double eps) {
    // Computed in fp32 as the reference implementations do, then cast back. Mixed-dtype operands
    // promote to fp32 inside the kernels (exact conversions), and mul_out rounds the fp32 product
    // to x's dtype as it stores it: the values of (xf * r) * float(gain) cast afterwards, in 7
    // kernels instead of 9 (a decode step runs two per layer).
    auto xf = x.to(at::kFloat);
    auto normed = xf * at::rsqrt(xf.pow(2).mean(-1, true) + eps);
    auto out = at::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
    at::mul_out(out, normed, gain);
    return out;
}

// RoPE tables laid out like the pairs they rotate: per position, cos2 = (cos, cos) and sin2 =
// (-sin, sin) for each pair (a, b), so that the rotation (a cos - b sin, a sin + b cos) is
// x * cos2 + swap(x) * sin2 with swap(a, b) = (b, a). Per element that is the same two fp32
// products and one sum, rounded the same way (b * -sin is exactly -(b * sin)), in four kernels
// instead of nine; made once per forward for every layer.
struct rope_tables {
    at::Tensor cos2, sin2; // [T, D] fp32
};

rope_tables make_rope_tables(const at::Tensor &cos, const at::Tensor &sin, rope_style style) {
    if (style == rope_style::half_split) return {at::cat({cos, cos}, -1), at::cat({-sin, sin}, -1)};
    return {at::stack({cos, cos}, -1).flatten(-2), at::stack({-sin, sin}, -1).flatten(-2)};
}

// x [B, H, T, D] -> x rotated, in x's dtype (computed in fp32: x * cos2 promotes).
at::Tensor apply_rope(const at::Tensor &x, const rope_tables &r, rope_style style) {
    const int64_t d = x.size(-1);
    const at::Tensor swapped = style == rope_style::half_split ? at::cat({x.narrow(-1, d / 2, d / 2), x.narrow(-1, 0, d / 2)}, -1)
                                                               : x.unflatten(-1, {d / 2, 2}).flip(-1).flatten(-2);
    auto out = at::empty(x.sizes(), x.options().memory_format(at::MemoryFormat::Contiguous));
    at::add_out(out, x * r.cos2, swapped * r.sin2); // the fp32 sum, rounded once to x's dtype on store
    return out;
}

// The codes every one of `readers` multiplies directly for m tokens, when they all ask for the same
// and the model has a producer to write them; bits 0 otherwise.
act_codes_request shared_codes_request(const activation_producer *producer, const std::vector<const linear_runtime *> &readers, int64_t m) {
    if (!producer) return {};
    act_codes_request want;
    for (size_t i = 0; i < readers.size(); ++i) {
        if (!readers[i]) return {};
        const auto r = readers[i]->codes_wanted(m);
        if (r.bits == 0 || (i > 0 && !(r == want))) return {};
        want = r;
    }
    return want;
}

} // namespace

std::vector<double> rope_inverse_frequencies(const llama_config &c) {
    const int64_t half = c.head_dim() / 2;
    std::vector<double> inv(static_cast<size_t>(half));
    for (int64_t i = 0; i < half; ++i) inv[i] = std::pow(c.rope_theta, -2.0 * double(i) / double(c.head_dim()));
    if (c.rope_scaling_factor > 0) {
        // LLaMA-3.1: long wavelengths are slowed by `factor`, short ones kept, a smooth blend between.
        const double old_len = double(c.rope_original_max_seq_len);
        const double low_wavelen = old_len / c.rope_low_freq_factor;
        const double high_wavelen = old_len / c.rope_high_freq_factor;
        for (auto &f : inv) {
            const double wavelen = 2 * M_PI / f;
            if (wavelen < high_wavelen) continue;
            if (wavelen > low_wavelen) {
                f /= c.rope_scaling_factor;
                continue;
            }
            const double smooth = (old_len / wavelen - c.rope_low_freq_factor) / (c.rope_high_freq_factor - c.rope_low_freq_factor);
            f = (1 - smooth) * f / c.rope_scaling_factor + smooth * f;
        }
    }
    return inv;
}

void llama_model::prepare_rope() {
    const auto inv = rope_inverse_frequencies(config);
    auto inv_freq = at::tensor(inv, at::TensorOptions().dtype(at::kDouble));
    auto pos = at::arange(config.max_seq_len, at::TensorOptions().dtype(at::kDouble));
    // Angles in fp64, then fp32 tables: large positions keep full fp32 accuracy this way.
    auto angles = at::outer(pos, inv_freq);
    rope_cos = at::cos(angles).to(at::kFloat).to(device());
    rope_sin = at::sin(angles).to(at::kFloat).to(device());
}

kv_cache llama_model::make_cache(int64_t batch, int64_t max_len) const {
    TORCH_CHECK(max_len <= config.max_seq_len, "cache length ", max_len, " exceeds max_seq_len ", config.max_seq_len);
    kv_cache cache;
    auto opts = at::TensorOptions().dtype(dtype()).device(device());
    for (size_t i = 0; i < layers.size(); ++i) {
        cache.k.push_back(at::zeros({batch, config.n_kv_heads, max_len, config.head_dim()}, opts));
        cache.v.push_back(at::zeros({batch, config.n_kv_heads, max_len, config.head_dim()}, opts));
    }
    return cache;
}

namespace {

// Where one forward call's tokens sit: their rotary tables, what attention lets them see, and how
// their keys and values reach the cache.
struct token_positions {
    rope_tables rope;               // the tokens' positions
    std::optional<at::Tensor> mask; // [T, S]: bool, true = attend; or additive (0 / -inf) in the model dtype
    bool causal = false;
    // Stores layer li's new keys / values ([B, Hkv, T, D]) and returns the ones attention reads.
    std::function<std::pair<at::Tensor, at::Tensor>(size_t li, const at::Tensor &k, const at::Tensor &v)> keys_values;
    // When set, the whole attention of layer li in one call: q [B, T, H * D], k and v [B, T, Hkv * D]
    // as the projections give them -> [B, T, H * D] (the fields above are then unused).
    std::function<at::Tensor(size_t li, const at::Tensor &q, const at::Tensor &k, const at::Tensor &v)> fused_attention;
    // When set, RMSNorm(x) * gain and SiLU(gate) * up in one kernel each (null: ATen operations), and
    // the residual add before a norm in the same kernel (sum = x + delta, returns the norm of sum).
    std::function<at::Tensor(const at::Tensor &x, const at::Tensor &gain)> fused_norm;
    std::function<at::Tensor(const at::Tensor &x, const at::Tensor &delta, const at::Tensor &gain, at::Tensor &sum)> fused_add_norm;
    std::function<at::Tensor(const at::Tensor &gate, const at::Tensor &up)> fused_silu_mul;
};

// tokens [B, T] -> logits [B, T, vocab] in fp32, the decoder stack at the given positions.
at::Tensor run_decoder(const llama_model &model, const at::Tensor &tokens, const token_positions &at_pos) {
    const auto &c = model.config;
    const int64_t bsz = tokens.size(0), t = tokens.size(1);
    const int64_t hd = c.head_dim();
    auto h = at::embedding(model.tok_embeddings, tokens.to(model.tok_embeddings.device())); // [B, T, dim]
    const bool gqa = c.n_kv_heads != c.n_heads;

    const int64_t m = bsz * t;
    const std::vector<int64_t> prefix{bsz, t};
    const auto *prod = model.producer.get();
    auto norm = [&](const at::Tensor &x, const at::Tensor &gain) { return at_pos.fused_norm ? at_pos.fused_norm(x, gain) : rms_norm(x, gain, c.norm_eps); };
    // A sublayer's output not yet added to the residual stream h: the next norm adds it, in the same
    // kernel where there is one (the step's fused norm, the producer), as h + delta otherwise.
    at::Tensor pending;
    auto norm_residual = [&](const at::Tensor &gain) {
        if (!pending.defined()) return norm(h, gain);
        at::Tensor y;
        if (at_pos.fused_add_norm) {
            at::Tensor sum;
            y = at_pos.fused_add_norm(h, pending, gain, sum);
            h = sum;
        } else {
            h = h + pending;
            y = norm(h, gain);
        }
        pending = at::Tensor();
        return y;
    };
    auto norm_residual_codes = [&](const at::Tensor &gain, act_codes_request want) {
        if (!pending.defined()) return prod->rms_norm_codes(h, gain, c.norm_eps, want);
        at::Tensor sum;
        auto codes = prod->add_rms_norm_codes(h, pending, gain, c.norm_eps, want, sum);
        h = sum;
        pending = at::Tensor();
        return codes;
    };
    // The linears reading one norm's output: by their fused runtime where the layer has one (each
    // output a view of its [..., N1 + N2 + ...] result), else one by one; from the producer's codes
    // where every reader takes the same.
    auto project = [&](const std::shared_ptr<const linear_runtime> &fused, std::initializer_list<const linear_layer *> parts, const at::Tensor &gain) {
        std::vector<at::Tensor> out;
        if (fused) {
            const auto want = shared_codes_request(prod, {fused.get()}, m);
            const at::Tensor y = want.bits ? fused->forward_codes(norm_residual_codes(gain, want), prefix) : fused->forward(norm_residual(gain));
            int64_t offset = 0;
            for (const auto *l : parts) {
                out.push_back(y.narrow(-1, offset, l->out_features()));
                offset += l->out_features();
            }
            return out;
        }
        std::vector<const linear_runtime *> runtimes;
        for (const auto *l : parts) runtimes.push_back(l->runtime.get());
        if (const auto want = shared_codes_request(prod, runtimes, m); want.bits) {
            const auto codes = norm_residual_codes(gain, want);
            for (const auto *l : parts) out.push_back(l->runtime->forward_codes(codes, prefix));
        } else {
            const auto x = norm_residual(gain);
            for (const auto *l : parts) out.push_back(l->forward(x));
        }
        return out;
    };
    for (size_t li = 0; li < model.layers.size(); ++li) {
        const auto &layer = model.layers[li];
        auto qkv = project(layer.qkv, {&layer.q_proj, &layer.k_proj, &layer.v_proj}, layer.attn_norm);
        at::Tensor q = qkv[0], k = qkv[1], v = qkv[2];
        at::Tensor attn;
        if (at_pos.fused_attention) {
            attn = at_pos.fused_attention(li, q, k, v);
        } else {
            q = q.view({bsz, t, c.n_heads, hd}).transpose(1, 2);    // [B, H, T, D]
            k = k.view({bsz, t, c.n_kv_heads, hd}).transpose(1, 2); // [B, Hkv, T, D]
            v = v.view({bsz, t, c.n_kv_heads, hd}).transpose(1, 2); // [B, Hkv, T, D]
            // q and k rotated in one pass (the same elementwise formula for every head).
            const auto qk = apply_rope(at::cat({q, k}, 1), at_pos.rope, c.rope); // [B, H + Hkv, T, D]
            q = qk.narrow(1, 0, c.n_heads);
            k = qk.narrow(1, c.n_heads, c.n_kv_heads);
            if (at_pos.keys_values) std::tie(k, v) = at_pos.keys_values(li, k, v);
            attn = at::scaled_dot_product_attention(q, k, v, at_pos.mask, 0.0, at_pos.causal, std::nullopt, /*enable_gqa=*/gqa); // [B, H, T, D]
            attn = attn.transpose(1, 2).reshape({bsz, t, c.dim});
        }
        pending = layer.o_proj.forward(attn);
        const auto gate_up = project(layer.gate_up, {&layer.gate_proj, &layer.up_proj}, layer.ffn_norm);
        const at::Tensor &gate = gate_up[0], &up = gate_up[1];
        if (const auto want = shared_codes_request(prod, {layer.down_proj.runtime.get()}, m); want.bits)
            pending = layer.down_proj.runtime->forward_codes(prod->silu_mul_codes(gate, up, want), prefix);
        else
            pending = layer.down_proj.forward(at_pos.fused_silu_mul ? at_pos.fused_silu_mul(gate, up) : at::silu(gate) * up);
    }
    h = norm_residual(model.final_norm);
    return at::linear(h, model.lm_head).to(at::kFloat); // [B, T, vocab]
}

void check_cache(const llama_model &model, const kv_cache &cache, int64_t bsz) {
    TORCH_CHECK(cache.k.size() == model.layers.size(), "kv cache has ", cache.k.size(), " layers, model ", model.layers.size());
    TORCH_CHECK(cache.k.front().size(0) == bsz, "kv cache batch ", cache.k.front().size(0), " != ", bsz);
}

} // namespace

at::Tensor llama_model::forward(const at::Tensor &tokens, kv_cache *cache) const {
    TORCH_CHECK(tokens.dim() == 2, "tokens must be [batch, seq], got ", tokens.sizes());
    TORCH_CHECK(rope_cos.defined(), "llama_model: prepare_rope() was not called by the loader");
    const int64_t bsz = tokens.size(0), t = tokens.size(1);
    const int64_t start = cache ? cache->length : 0;
    TORCH_CHECK(start + t <= config.max_seq_len, "positions ", start, "..", start + t - 1, " exceed max_seq_len ", config.max_seq_len);
    if (cache) {
        check_cache(*this, *cache, bsz);
        TORCH_CHECK(start + t <= cache->capacity(), "kv cache full: ", start, " + ", t, " > capacity ", cache->capacity());
    }
    token_positions at_pos;
    at_pos.rope = make_rope_tables(rope_cos.narrow(0, start, t), rope_sin.narrow(0, start, t), config.rope);
    // Query i (absolute position start+i) sees keys 0..start+i. Without past keys that is the
    // plain causal mask; a single new token sees everything; otherwise an explicit mask.
    if (start == 0) {
        at_pos.causal = t > 1;
    } else if (t > 1) {
        const auto opts = at::TensorOptions().dtype(at::kLong).device(device());
        auto qpos = at::arange(start, start + t, opts).unsqueeze(1);
        auto kpos = at::arange(start + t, opts).unsqueeze(0);
        at_pos.mask = kpos <= qpos; // [T, start+T] bool, true = attend
    }
    // A fused gate_up GEMM leaves gate and up as strided slices of its output, which ATen's
    // elementwise kernels read far slower than contiguous tensors (H100, 2048 x 11008: silu(gate) * up
    // 144 us strided, 86 us contiguous; 1.9 ms of a 7B prefill). The SiLU x up kernel reads them in
    // place with ATen's formula, bit for bit (the GPU test checks at::equal); contiguous inputs stay
    // with ATen, so a model without fused projections runs exactly as before.
    const bool gate_up_fused = std::any_of(layers.begin(), layers.end(), [](const decoder_layer &l) { return l.gate_up != nullptr; });
    if (gate_up_fused && fused_step_norms_unsupported(*this).empty())
        at_pos.fused_silu_mul = [this](const at::Tensor &gate, const at::Tensor &up) {
            return gate.is_contiguous() && up.is_contiguous() ? at::silu(gate) * up : fused_silu_mul(*this, gate, up);
        };
    if (cache)
        at_pos.keys_values = [cache, start, t](size_t li, const at::Tensor &k, const at::Tensor &v) {
            cache->k[li].narrow(2, start, t).copy_(k);
            cache->v[li].narrow(2, start, t).copy_(v);
            return std::make_pair(cache->k[li].narrow(2, 0, start + t), cache->v[li].narrow(2, 0, start + t)); // [B, Hkv, start+T, D]
        };
    auto logits = run_decoder(*this, tokens, at_pos);
    if (cache) cache->length = start + t;
    return logits;
}

at::Tensor llama_model::forward_step(const at::Tensor &tokens, const at::Tensor &pos, kv_cache &cache, bool fused) const {
    TORCH_CHECK(tokens.dim() == 2 && tokens.size(1) == 1, "forward_step: tokens must be [batch, 1], got ", tokens.sizes());
    TORCH_CHECK(pos.dim() == 1 && pos.size(0) == 1 && pos.scalar_type() == at::kLong && pos.device() == device(),
                "forward_step: pos must be one int64 on ", device().str(), ", got ", pos.sizes(), " ", pos.scalar_type(), " on ", pos.device().str());
    TORCH_CHECK(rope_cos.defined(), "llama_model: prepare_rope() was not called by the loader");
    check_cache(*this, cache, tokens.size(0));
    token_positions at_pos;
    if (fused && fused_step_norms_unsupported(*this).empty()) {
        at_pos.fused_norm = [this](const at::Tensor &x, const at::Tensor &gain) { return fused_rms_norm(*this, x, gain); };
        at_pos.fused_silu_mul = [this](const at::Tensor &gate, const at::Tensor &up) { return fused_silu_mul(*this, gate, up); };
        at_pos.fused_add_norm = [this](const at::Tensor &x, const at::Tensor &delta, const at::Tensor &gain, at::Tensor &sum) {
            return fused_add_rms_norm(*this, x, delta, gain, sum);
        };
    }
    if (fused && fused_step_attention_unsupported(*this).empty()) {
        at_pos.fused_attention = [this, &pos, &cache](size_t li, const at::Tensor &q, const at::Tensor &k, const at::Tensor &v) {
            return fused_step_attention(*this, q, k, v, pos, cache, li);
        };
        return run_decoder(*this, tokens, at_pos);
    }
    at_pos.rope = make_rope_tables(rope_cos.index_select(0, pos), rope_sin.index_select(0, pos), config.rope);
    // Additive, made once for all layers: attention would turn a bool mask into this very tensor
    // (0 where attended, -inf elsewhere, in q's dtype) in every layer.
    const auto keep = at::arange(cache.capacity(), pos.options()) <= pos; // [capacity]
    at_pos.mask = at::zeros({1, cache.capacity()}, rope_cos.options().dtype(dtype())).masked_fill_(keep.logical_not().unsqueeze(0), -INFINITY);
    at_pos.keys_values = [&cache, &pos](size_t li, const at::Tensor &k, const at::Tensor &v) {
        cache.k[li].index_copy_(2, pos, k);
        cache.v[li].index_copy_(2, pos, v);
        return std::make_pair(cache.k[li], cache.v[li]);
    };
    return run_decoder(*this, tokens, at_pos);
}

std::vector<linear_layer *> llama_model::linears() {
    std::vector<linear_layer *> out;
    for (auto &l : layers)
        for (auto *p : {&l.q_proj, &l.k_proj, &l.v_proj, &l.o_proj, &l.gate_proj, &l.up_proj, &l.down_proj}) out.push_back(p);
    return out;
}

std::vector<const linear_layer *> llama_model::linears() const {
    std::vector<const linear_layer *> out;
    for (auto *p : const_cast<llama_model *>(this)->linears()) out.push_back(p);
    return out;
}

at::Device llama_model::device() const { return tok_embeddings.device(); }
at::ScalarType llama_model::dtype() const { return tok_embeddings.scalar_type(); }

llama_model llama_make_synthetic(const llama_config &config, uint64_t seed, at::ScalarType dtype, at::Device device) {
    config.validate();
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    auto cpu = at::TensorOptions().dtype(at::kFloat);
    auto to_model = [&](at::Tensor t) { return t.to(device, dtype); };
    auto matrix = [&](int64_t n, int64_t k) { return to_model(at::normal(0.0, 1.0 / std::sqrt(double(k)), {n, k}, gen, cpu)); };
    auto gain = [&](int64_t n) { return to_model(1.0 + at::normal(0.0, 0.1, {n}, gen, cpu)); };
    auto make_linear = [&](const std::string &name, int64_t n, int64_t k, bool bias) {
        linear_layer l;
        l.name = name;
        l.weight = matrix(n, k);
        if (bias) l.bias = to_model(at::normal(0.0, 0.02, {n}, gen, cpu));
        return l;
    };

    llama_model m;
    m.config = config;
    m.tok_embeddings = to_model(at::normal(0.0, 1.0, {config.vocab_size, config.dim}, gen, cpu));
    for (int64_t i = 0; i < config.n_layers; ++i) {
        const std::string p = "layers." + std::to_string(i) + ".";
        decoder_layer l;
        l.attn_norm = gain(config.dim);
        l.ffn_norm = gain(config.dim);
        l.q_proj = make_linear(p + "self_attn.q_proj", config.dim, config.dim, config.qkv_bias);
        l.k_proj = make_linear(p + "self_attn.k_proj", config.kv_dim(), config.dim, config.qkv_bias);
        l.v_proj = make_linear(p + "self_attn.v_proj", config.kv_dim(), config.dim, config.qkv_bias);
        l.o_proj = make_linear(p + "self_attn.o_proj", config.dim, config.dim, false);
        l.gate_proj = make_linear(p + "mlp.gate_proj", config.hidden_dim, config.dim, false);
        l.up_proj = make_linear(p + "mlp.up_proj", config.hidden_dim, config.dim, false);
        l.down_proj = make_linear(p + "mlp.down_proj", config.dim, config.hidden_dim, false);
        m.layers.push_back(std::move(l));
    }
    m.final_norm = gain(config.dim);
    m.lm_head = config.tied_embeddings ? m.tok_embeddings : matrix(config.vocab_size, config.dim);
    m.prepare_rope();
    return m;
}

} // namespace qb
