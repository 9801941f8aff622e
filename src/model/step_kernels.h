// llama_model::forward_step's fused kernels, where they can run (a CUDA build, a CUDA fp16 model,
// shapes the kernels take). At batch 1 a decode step is hundreds of small kernels that each cost a
// few microseconds however little they compute, so a step's time is largely their count:
//   - attention (kernels/decode_attn): RoPE of the new token's query and key, its key and value
//     written into the cache at pos, and attention over positions 0..pos, in one kernel a layer
//     where ATen takes ~10 (cat, RoPE, two index_copy, masked attention over the whole capacity, a
//     transpose copy);
//   - RMSNorm and SiLU(gate) x up (kernels/quant_pack/producer_quant.h without codes): one kernel
//     each where ATen's fp32 RMSNorm takes 7 and SiLU x up 2, the residual add before a norm in the
//     same kernel. Where the back-end's activation producer writes codes for the linears, it runs
//     instead (it computes the same y, and adds the residual in its kernel too).
// forward() keeps the ATen operations: it is the reference the steps are tested against.
#pragma once
#include "model/llama.h"

#include <string>

namespace qb {

// Why each fused kernel cannot run on this model (empty: it can).
std::string fused_step_attention_unsupported(const llama_model &model);
std::string fused_step_norms_unsupported(const llama_model &model); // RMSNorm and SiLU x up

// What forward_step(..., fused) runs on this model, e.g. "fused: attention (decode_attn), RMSNorm and
// SiLU x up (producer_quant)", or "aten: ..." with the reasons.
std::string step_kernels_description(const llama_model &model, bool fused);

// q [B, 1, H * D], k and v [B, 1, Hkv * D] (the projections' outputs) -> attention output
// [B, 1, H * D]; writes layer `layer`'s cache at pos ([1] int64 on the device). Needs
// fused_step_attention_unsupported(model) empty.
at::Tensor fused_step_attention(const llama_model &model, const at::Tensor &q, const at::Tensor &k, const at::Tensor &v, const at::Tensor &pos,
                                kv_cache &cache, size_t layer);
// x [..., dim] -> RMSNorm(x) * gain; gate, up [..., hidden] -> SiLU(gate) * up. fp16 in and out on the
// model's device; need fused_step_norms_unsupported(model) empty.
at::Tensor fused_rms_norm(const llama_model &model, const at::Tensor &x, const at::Tensor &gain);
// The residual add before the norm in the same kernel: sum = x + delta (the model's fp16 add, bit for
// bit), returns RMSNorm(sum) * gain.
at::Tensor fused_add_rms_norm(const llama_model &model, const at::Tensor &x, const at::Tensor &delta, const at::Tensor &gain, at::Tensor &sum);
at::Tensor fused_silu_mul(const llama_model &model, const at::Tensor &gate, const at::Tensor &up);

} // namespace qb
