// CPU reference of decode_attention (decode_attn.h), torch-free and CUDA-free: the same RoPE (two
// fp32 products and an fp32 sum, rounded to fp16: bit for bit what the kernel and the model store)
// and the attention in double precision, with a bound on what the kernel's fp32 evaluation may
// differ from it (the test adds the final fp16 rounding).
#pragma once
#include "decode_attn/rope_pairs.h"

#include <cstdint>
#include <vector>

namespace qb::attn {

struct decode_attn_problem {
    int batch = 0, heads = 0, kv_heads = 0, head_dim = 0, capacity = 0, pos = 0;
    rope_pairs rope = rope_pairs::half_split;
    std::vector<uint16_t> q, k, v;          // fp16 bits: [B, H * D], [B, Hkv * D], [B, Hkv * D]
    std::vector<uint16_t> cache_k, cache_v; // fp16 bits [B, Hkv, capacity, D]: positions < pos are read
    std::vector<float> rope_cos, rope_sin;  // [rows > pos, D / 2]
};

struct decode_attn_expected {
    std::vector<uint16_t> cache_k, cache_v; // the caches after the step: row pos replaced, nothing else
    std::vector<double> out;                // [B, H * D]
    // Per element of out: how far an fp32 evaluation in the kernel's order may be from `out`
    // (scores, exponentials, sums; before the output's fp16 rounding).
    std::vector<double> fp32_bound;
};

decode_attn_expected decode_attention_ref(const decode_attn_problem &p);

} // namespace qb::attn
