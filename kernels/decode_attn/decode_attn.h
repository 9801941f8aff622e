// One decode step's attention in one kernel: every sequence of the batch adds one token at the same
// position `pos`, read from device memory so that a CUDA graph captured once serves every position.
// The kernel rotates the new token's query and key (RoPE), writes the rotated key and the value into
// the KV cache at pos, and computes softmax(q K^T / sqrt(D)) V over positions 0..pos.
//
// Why: at batch 1 a decode step's attention is tiny work spread over ~10 ATen kernels a layer (the
// q/k concatenation, four RoPE element-wise kernels, two index_copy, attention with a mask over the
// cache's whole capacity, a transpose copy), each costing a few microseconds however little it
// computes; a 7B step pays that 32 times.
//
// How: split over the context (flash-decoding). The grid has S blocks per (sequence, KV group g),
// S fixed by the shapes and the SM count (about two blocks per SM in all), so one captured graph
// serves every position; block s takes the s-th share of positions 0..pos (whole 64-row chunks, at
// least 128 rows) for every query head of the group (GQA reads each key once per group) and walks
// its chunks with an online softmax, the next chunk's rows in flight while one is computed. A
// block whose share starts past pos exits at once. With one active block the output is written
// directly; otherwise each block stores its partial (max, sum of exponentials, unnormalized output)
// and the last block of the group to finish combines the partials in split order. Every sum has a
// fixed order, so the result is bit-identical from run to run whatever the blocks' timing.
//
// Numerics: the rotation is exactly the model's ATen formula (x * cos + swap(x) * (∓sin), two fp32
// products and an fp32 sum, rounded once to fp16), so the cache holds the same keys either way;
// scores, softmax and the weighted sum are fp32 (expf), the output rounded once to fp16.
// Reference: decode_attn_ref.h. Test: tests/kernels/decode_attn. Benchmark: bench_decode_attn.cpp.
#pragma once
#include "core/status.h"
#include "decode_attn/rope_pairs.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace qb::attn {

constexpr int decode_attn_chunk = 64; // positions per step of a block
constexpr int decode_attn_max_group = 8; // query heads per KV head (n_heads / n_kv_heads)

struct decode_attn_args {
    // The new token's projections: batch row b starts at q + b * q_stride ([H * D]), k and v likewise
    // ([Hkv * D]); strides in elements.
    const __half *q = nullptr, *k = nullptr, *v = nullptr;
    int64_t q_stride = 0, k_stride = 0, v_stride = 0;
    __half *cache_k = nullptr, *cache_v = nullptr; // [B, Hkv, capacity, D], contiguous
    const float *rope_cos = nullptr, *rope_sin = nullptr; // [rope_rows, D / 2]: angle i of position p at p * D/2 + i
    int rope_rows = 0;
    rope_pairs rope = rope_pairs::half_split;
    // The position, one int64 on the device. Outside [0, min(capacity, rope_rows)) the kernel writes
    // nothing to the cache and NaN to `out` (a device value cannot be checked before the launch).
    const int64_t *pos = nullptr;
    int batch = 0, heads = 0, kv_heads = 0, head_dim = 0, capacity = 0;
    __half *out = nullptr; // [B, H * D], contiguous
    // decode_attn_scratch_bytes() bytes, zero-filled before the first launch; every launch leaves
    // them ready for the next (its split counters back at zero).
    void *scratch = nullptr;
    // Launch with programmatic dependent launch: the blocks may be scheduled while the kernel ahead
    // in the stream (the GEMM writing q, k, v) drains, and wait for it before reading anything.
    bool pdl = false;
};

// Why the kernel cannot run this attention (empty reason: it can). Shapes only; pointers are checked
// at the launch.
status decode_attn_supports(int heads, int kv_heads, int head_dim);
size_t decode_attn_scratch_bytes(int batch, int heads, int kv_heads, int head_dim, int capacity);
status decode_attention(const decode_attn_args &a, cudaStream_t stream);

} // namespace qb::attn
