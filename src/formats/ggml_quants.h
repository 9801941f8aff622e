// ggml's quantized block formats (llama.cpp ggml/src/ggml-common.h) and their reference
// dequantization, written from ggml-quants.c's dequantize_row_* so that a GGUF tensor expands
// to the same float32 values, bit for bit, as llama.cpp's CPU reference gives.
//
// Layouts (all little-endian; `half` is an IEEE fp16 bit pattern):
//   q4_0  [d:half][qs:16]                 32 values: (nibble - 8) * d; low nibbles are values
//                                          0..15, high nibbles 16..31
//   q4_1  [d:half][m:half][qs:16]         nibble * d + m
//   q5_0  [d:half][qh:4][qs:16]           5th bit of value j in bit j of qh; (q - 16) * d
//   q5_1  [d:half][m:half][qh:4][qs:16]   q * d + m
//   q8_0  [d:half][qs:32 int8]            q * d
//   q2_K  [scales:16][qs:64][d][dmin]     256 values in 16 groups of 16, 4-bit scale and min
//   q3_K  [hmask:32][qs:64][scales:12][d] 6-bit scales packed in 12 bytes, high bit in hmask
//   q4_K  [d][dmin][scales:12][qs:128]    8 groups of 32, 6-bit scales and mins
//   q5_K  [d][dmin][scales:12][qh:32][qs:128]
//   q6_K  [ql:128][qh:64][scales:16 int8][d]   (ql | qh << 4) - 32, times d * scale
//
// Numerics: each value is computed in float32 in ggml's order of operations. Every product
// before the last operation is exact (an fp16 scale times small integers needs at most 22
// significant bits), so each value is rounded at most once, and whether a compiler contracts
// a*b+c into an FMA makes no difference.
#pragma once
#include <cstdint>

namespace qb::ggml {

constexpr int64_t qk4_0 = 32, qk4_1 = 32, qk5_0 = 32, qk5_1 = 32, qk8_0 = 32;
constexpr int64_t qk_k = 256; // k-quant super-block
constexpr int64_t k_scale_size = 12;

struct block_q4_0 {
    uint16_t d;
    uint8_t qs[qk4_0 / 2];
};
static_assert(sizeof(block_q4_0) == 2 + 16, "block_q4_0: fp16 scale + 16 bytes of nibbles");

struct block_q4_1 {
    uint16_t d, m;
    uint8_t qs[qk4_1 / 2];
};
static_assert(sizeof(block_q4_1) == 4 + 16, "block_q4_1: fp16 scale and min + 16 bytes of nibbles");

struct block_q5_0 {
    uint16_t d;
    uint8_t qh[4];
    uint8_t qs[qk5_0 / 2];
};
static_assert(sizeof(block_q5_0) == 2 + 4 + 16, "block_q5_0: fp16 scale + 32 high bits + nibbles");

struct block_q5_1 {
    uint16_t d, m;
    uint8_t qh[4];
    uint8_t qs[qk5_1 / 2];
};
static_assert(sizeof(block_q5_1) == 4 + 4 + 16, "block_q5_1: fp16 scale and min + 32 high bits + nibbles");

struct block_q8_0 {
    uint16_t d;
    int8_t qs[qk8_0];
};
static_assert(sizeof(block_q8_0) == 2 + 32, "block_q8_0: fp16 scale + 32 int8");

struct block_q2_k {
    uint8_t scales[qk_k / 16]; // low nibble scale, high nibble min, per 16 values
    uint8_t qs[qk_k / 4];
    uint16_t d, dmin;
};
static_assert(sizeof(block_q2_k) == 2 * 2 + qk_k / 16 + qk_k / 4, "block_q2_K: 84 bytes per 256 values");

struct block_q3_k {
    uint8_t hmask[qk_k / 8];
    uint8_t qs[qk_k / 4];
    uint8_t scales[12];
    uint16_t d;
};
static_assert(sizeof(block_q3_k) == 2 + qk_k / 4 + qk_k / 8 + 12, "block_q3_K: 110 bytes per 256 values");

struct block_q4_k {
    uint16_t d, dmin;
    uint8_t scales[k_scale_size];
    uint8_t qs[qk_k / 2];
};
static_assert(sizeof(block_q4_k) == 2 * 2 + k_scale_size + qk_k / 2, "block_q4_K: 144 bytes per 256 values");

struct block_q5_k {
    uint16_t d, dmin;
    uint8_t scales[k_scale_size];
    uint8_t qh[qk_k / 8];
    uint8_t qs[qk_k / 2];
};
static_assert(sizeof(block_q5_k) == 2 * 2 + k_scale_size + qk_k / 8 + qk_k / 2, "block_q5_K: 176 bytes per 256 values");

struct block_q6_k {
    uint8_t ql[qk_k / 2]; // low 4 bits
    uint8_t qh[qk_k / 4]; // high 2 bits
    int8_t scales[qk_k / 16];
    uint16_t d;
};
static_assert(sizeof(block_q6_k) == 2 + qk_k / 2 + qk_k / 4 + qk_k / 16, "block_q6_K: 210 bytes per 256 values");

// k: number of values, a multiple of the block size; y: k floats.
void dequantize_row_q4_0(const block_q4_0 *x, float *y, int64_t k);
void dequantize_row_q4_1(const block_q4_1 *x, float *y, int64_t k);
void dequantize_row_q5_0(const block_q5_0 *x, float *y, int64_t k);
void dequantize_row_q5_1(const block_q5_1 *x, float *y, int64_t k);
void dequantize_row_q8_0(const block_q8_0 *x, float *y, int64_t k);
void dequantize_row_q2_k(const block_q2_k *x, float *y, int64_t k);
void dequantize_row_q3_k(const block_q3_k *x, float *y, int64_t k);
void dequantize_row_q4_k(const block_q4_k *x, float *y, int64_t k);
void dequantize_row_q5_k(const block_q5_k *x, float *y, int64_t k);
void dequantize_row_q6_k(const block_q6_k *x, float *y, int64_t k);

} // namespace qb::ggml
