#include "model/step_kernels.h"

#include "config.h"
#include "core/error.h"
#include "model/tensor_rows.h"

#include <ATen/ATen.h>

#if QBENCH_HAVE_CUDA
#include "decode_attn/decode_attn.h"
#include "model/half_ptr.h"
#include "quant_pack/producer_quant.h"

#include <ATen/cuda/CUDAContext.h>
#endif

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace qb {

namespace {

// What both fused kernels need of the model: CUDA and fp16 (empty: it has them).
std::string cuda_fp16_unsupported(const llama_model &model) {
#if !QBENCH_HAVE_CUDA
    (void)model;
    return "qbench was built without CUDA";
#else
    if (!model.device().is_cuda()) return fmt::format("the model is on {}, the kernels run on CUDA", model.device().str());
    if (model.dtype() != at::kHalf) return fmt::format("the kernels run fp16 models (dtype={})", dtype_name(model.dtype()));
    return {};
#endif
}

#if QBENCH_HAVE_CUDA
void check_fp16_rows(const llama_model &model, const at::Tensor &t, int64_t k, const char *who, const char *what) {
    if (t.dim() < 1 || t.size(-1) != k || !t.is_contiguous() || t.scalar_type() != at::kHalf || t.device() != model.device())
        fail("{}: {} must be contiguous [..., {}] fp16 on {}, got [{}] {} on {}", who, what, k, model.device().str(), fmt::join(t.sizes(), ", "),
             c10::toString(t.scalar_type()), t.device().str());
}
#endif

} // namespace

std::string fused_step_attention_unsupported(const llama_model &model) {
    if (auto why = cuda_fp16_unsupported(model); !why.empty()) return why;
#if QBENCH_HAVE_CUDA
    const auto &c = model.config;
    if (const auto st = attn::decode_attn_supports(int(c.n_heads), int(c.n_kv_heads), int(c.head_dim())); !st.ok()) return st.reason;
#endif
    return {};
}

std::string fused_step_norms_unsupported(const llama_model &model) {
    if (auto why = cuda_fp16_unsupported(model); !why.empty()) return why;
    const auto &c = model.config;
    if (c.dim % 128 || c.hidden_dim % 128 || c.dim > 32768)
        return fmt::format("RMSNorm and SiLU x up kernels need dim and hidden_dim multiples of 128, dim at most 32768 (dim={}, hidden_dim={})", c.dim,
                           c.hidden_dim);
    return {};
}

std::string step_kernels_description(const llama_model &model, bool fused) {
    if (!fused) return "aten: RoPE, cache write, masked attention over the whole cache, RMSNorm and SiLU x up as ATen operations (fused kernels not asked for)";
    const auto attn = fused_step_attention_unsupported(model), norms = fused_step_norms_unsupported(model);
    if (attn.empty() && norms.empty())
        return "fused: attention as one decode_attn kernel per layer (RoPE, cache write, attention over positions 0..pos); RMSNorm and SiLU x up as one "
               "kernel each (producer_quant)";
    if (attn.empty()) return "fused attention (decode_attn); aten RMSNorm and SiLU x up (" + norms + ")";
    if (norms.empty()) return "fused RMSNorm and SiLU x up (producer_quant); aten attention (" + attn + ")";
    // One reason when both share it (no CUDA, not fp16), else each.
    return "aten: RoPE, cache write, masked attention over the whole cache, RMSNorm and SiLU x up as ATen operations (" +
           (attn == norms ? attn : "attention: " + attn + "; RMSNorm and SiLU x up: " + norms) + ")";
}

at::Tensor fused_step_attention(const llama_model &model, const at::Tensor &q, const at::Tensor &k, const at::Tensor &v, const at::Tensor &pos,
                                kv_cache &cache, size_t layer) {
#if !QBENCH_HAVE_CUDA
    (void)q, (void)k, (void)v, (void)pos, (void)cache, (void)layer;
    fail("fused step attention: {}", fused_step_attention_unsupported(model));
#else
    if (auto why = fused_step_attention_unsupported(model); !why.empty()) fail("fused step attention: {}", why);
    const auto &c = model.config;
    const int64_t bsz = q.size(0), d = c.head_dim();
    auto row_major = [&](const at::Tensor &t, int64_t n, const char *what) {
        if (t.dim() != 3 || t.size(0) != bsz || t.size(1) != 1 || t.size(2) != n || t.stride(2) != 1 || t.scalar_type() != at::kHalf ||
            t.device() != model.device())
            fail("fused step attention: {} must be [{}, 1, {}] fp16 on {} with unit stride last, got [{}] {} on {}", what, bsz, n, model.device().str(),
                 fmt::join(t.sizes(), ", "), c10::toString(t.scalar_type()), t.device().str());
    };
    row_major(q, c.n_heads * d, "q");
    row_major(k, c.n_kv_heads * d, "k");
    row_major(v, c.n_kv_heads * d, "v");
    const auto &cos = model.rope_cos, &sin = model.rope_sin;
    if (!cos.is_contiguous() || !sin.is_contiguous() || cos.scalar_type() != at::kFloat || sin.scalar_type() != at::kFloat ||
        cos.device() != model.device() || sin.device() != model.device() || cos.size(1) != d / 2)
        fail("fused step attention: the RoPE tables must be contiguous fp32 [max_seq_len, {}] on {} (prepare_rope makes them so)", d / 2,
             model.device().str());
    auto &ck = cache.k.at(layer), &cv = cache.v.at(layer);
    if (!ck.is_contiguous() || !cv.is_contiguous()) fail("fused step attention: the cache of layer {} is not contiguous", layer);
    const int64_t capacity = cache.capacity();
    const size_t need = attn::decode_attn_scratch_bytes(int(bsz), int(c.n_heads), int(c.n_kv_heads), int(d), int(capacity));
    // Zero-filled once, then left ready by every launch (its split counters back at zero). Made by
    // the decode graph's warm-up steps, before any capture.
    if (!cache.step_scratch.defined() || size_t(cache.step_scratch.numel()) < need)
        cache.step_scratch = at::zeros({int64_t(need)}, at::TensorOptions().dtype(at::kByte).device(model.device()));
    auto out = at::empty({bsz, 1, c.n_heads * d}, q.options().memory_format(at::MemoryFormat::Contiguous));

    attn::decode_attn_args a;
    a.q = half_ptr(q);
    a.k = half_ptr(k);
    a.v = half_ptr(v);
    a.q_stride = q.stride(0), a.k_stride = k.stride(0), a.v_stride = v.stride(0);
    a.cache_k = half_ptr(ck);
    a.cache_v = half_ptr(cv);
    a.rope_cos = model.rope_cos.data_ptr<float>();
    a.rope_sin = model.rope_sin.data_ptr<float>();
    a.rope_rows = int(model.rope_cos.size(0));
    a.rope = c.rope == rope_style::interleaved ? attn::rope_pairs::interleaved : attn::rope_pairs::half_split;
    a.pos = pos.data_ptr<int64_t>();
    a.batch = int(bsz), a.heads = int(c.n_heads), a.kv_heads = int(c.n_kv_heads), a.head_dim = int(d), a.capacity = int(capacity);
    a.out = half_ptr(out);
    a.scratch = cache.step_scratch.data_ptr();
    a.pdl = true; // scheduled while the q, k, v GEMM drains (the kernel waits for it before reading)
    if (const auto st = attn::decode_attention(a, at::cuda::getCurrentCUDAStream().stream()); !st.ok())
        fail("fused step attention, layer {}: {}", layer, st.reason);
    return out;
#endif
}

namespace {

// RMSNorm(x [+ delta]) * gain by producer_quant's kernel without codes; with delta, the sum goes to *sum.
at::Tensor norm_kernel(const llama_model &model, const char *who, const at::Tensor &x, const at::Tensor *delta, const at::Tensor &gain, at::Tensor *sum) {
#if !QBENCH_HAVE_CUDA
    (void)x, (void)delta, (void)gain, (void)sum;
    fail("{}: {}", who, fused_step_norms_unsupported(model));
#else
    if (auto why = fused_step_norms_unsupported(model); !why.empty()) fail("{}: {}", who, why);
    const int64_t k = model.config.dim;
    check_fp16_rows(model, x, k, who, "x");
    check_fp16_rows(model, gain, k, who, "gain");
    auto y = at::empty_like(x);
    const auto *xp = half_ptr(x), *gp = half_ptr(gain);
    const float eps = float(model.config.norm_eps);
    const int m = int(x.numel() / k);
    auto *yp = half_ptr(y);
    const auto stream = at::cuda::getCurrentCUDAStream().stream();
    status st;
    if (delta) {
        check_fp16_rows(model, *delta, k, who, "delta");
        if (x.sizes() != delta->sizes()) fail("{}: x [{}] and delta [{}] differ", who, fmt::join(x.sizes(), ", "), fmt::join(delta->sizes(), ", "));
        *sum = at::empty_like(x);
        st = w6::add_rmsnorm_quant_int8(xp, half_ptr(*delta), gp, eps, m, int(k), half_ptr(*sum), yp, w6::act_codes_out{}, stream, /*pdl=*/true);
    } else {
        st = w6::rmsnorm_quant_int8(xp, gp, eps, m, int(k), yp, w6::act_codes_out{}, stream, /*pdl=*/true);
    }
    if (!st.ok()) fail("{}: {}", who, st.reason);
    return y;
#endif
}

} // namespace

at::Tensor fused_rms_norm(const llama_model &model, const at::Tensor &x, const at::Tensor &gain) {
    return norm_kernel(model, "fused RMSNorm", x, nullptr, gain, nullptr);
}

at::Tensor fused_add_rms_norm(const llama_model &model, const at::Tensor &x, const at::Tensor &delta, const at::Tensor &gain, at::Tensor &sum) {
    return norm_kernel(model, "fused add + RMSNorm", x, &delta, gain, &sum);
}

at::Tensor fused_silu_mul(const llama_model &model, const at::Tensor &gate, const at::Tensor &up) {
#if !QBENCH_HAVE_CUDA
    (void)gate, (void)up;
    fail("fused SiLU x up: {}", fused_step_norms_unsupported(model));
#else
    if (auto why = fused_step_norms_unsupported(model); !why.empty()) fail("fused SiLU x up: {}", why);
    const int64_t k = model.config.hidden_dim;
    for (const auto *t : {&gate, &up})
        if (t->dim() < 1 || t->size(-1) != k || t->scalar_type() != at::kHalf || t->device() != model.device())
            fail("fused SiLU x up: {} must be [..., {}] fp16 on {}, got [{}] {} on {}", t == &gate ? "gate" : "up", k, model.device().str(),
                 fmt::join(t->sizes(), ", "), c10::toString(t->scalar_type()), t->device().str());
    if (gate.sizes() != up.sizes()) fail("fused SiLU x up: gate [{}] and up [{}] differ", fmt::join(gate.sizes(), ", "), fmt::join(up.sizes(), ", "));
    // Read in place where both have one row stride (slices of a fused gate_up GEMM's output).
    auto g = rows_of(gate, k), u = rows_of(up, k);
    if (g.ld != u.ld || g.ld % 4) g = rows_of(gate.contiguous(), k), u = rows_of(up.contiguous(), k);
    auto y = at::empty(gate.sizes(), gate.options().memory_format(at::MemoryFormat::Contiguous));
    const auto st = w6::silu_mul_quant_int8(half_ptr(g.rows), half_ptr(u.rows), int(g.ld), int(g.rows.size(0)), int(k), half_ptr(y), w6::act_codes_out{},
                                            at::cuda::getCurrentCUDAStream().stream(), /*pdl=*/true);
    if (!st.ok()) fail("fused SiLU x up: {}", st.reason);
    return y;
#endif
}

} // namespace qb
