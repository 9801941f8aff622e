// llama_model::forward_step's attention as one fused kernel a layer (kernels/decode_attn): RoPE of
// the new token's query and key, its key and value written into the cache at pos, and attention
// over positions 0..pos, where ATen takes ~10 kernels (cat, RoPE, two index_copy, masked attention
// over the whole capacity, a transpose copy) that cost a few microseconds each at batch 1.
#pragma once
#include "model/llama.h"

#include <string>

namespace qb {

// Why this model's decode steps cannot use the fused kernel (empty: they can): a build without
// CUDA, a model not on CUDA or not fp16, a head layout the kernel does not do.
std::string fused_step_attention_unsupported(const llama_model &model);

// What forward_step(..., fuse_attention) runs for attention on this model: "fused: ..." or
// "aten: ... (why not fused)".
std::string step_attention_description(const llama_model &model, bool fuse_attention);

// q [B, 1, H * D], k and v [B, 1, Hkv * D] (the projections' outputs) -> attention output
// [B, 1, H * D]; writes layer `layer`'s cache at pos ([1] int64 on the device). Needs
// fused_step_attention_unsupported(model) empty.
at::Tensor fused_step_attention(const llama_model &model, const at::Tensor &q, const at::Tensor &k, const at::Tensor &v, const at::Tensor &pos,
                                kv_cache &cache, size_t layer);

} // namespace qb
