// W6 packed layouts shared by the CPU reference, the packers and the CUDA kernels (w6_imma,
// flexq_btc): one definition of where every bit lives, compiled as plain C++ and as CUDA.
//
// Weights W [N, K] int6 in [-32, 31], symmetric, one fp16 scale per (row, 128-wide K group).
// Both back-ends store a (16-row tile, K group) as 1536 bytes = 16 x 128 x 6 bits, as three
// 512-byte slabs [3][32 lanes][16 B], so that each warp load instruction reads 512 contiguous
// bytes and each lane receives exactly the 12 words its mma fragments need:
//   tile (nt, g) at byte offset ((nt * G + g) * 1536); lane word w (0..11) in slab w / 4,
//   component w % 4. Rows past N are zero; scales [NT][G][8] half2 = (row i, row i + 8).
// 6.125 bits per weight: 1536 B + 32 B of scales per 2048 weights.
//
// w6_imma (int8 tensor cores, mma.sync m16n8k32 s8, weights as the A operand):
//   lane (gid = lane / 4, t = lane % 4) holds rows r = gid and r + 8; k32 chunk kk (0..3) of
//   the group is words [3kk, 3kk + 1, 3kk + 2] = L0, L1, H. The four A registers of chunk kk are
//   a0 (row r), a1 (row r + 8) over k = 32t + 8kk + e, and a2 (row r), a3 (row r + 8) over
//   k = 32t + 8kk + 4 + e (e = byte 0..3): a permutation of K inside the group (a dot product
//   does not care) chosen so that the B fragment of the same lane is 32 contiguous activation
//   bytes act[token][32t .. 32t + 31], two 16-byte loads.
//   L0 byte e = lo4(a0[e]) | lo4(a1[e]) << 4, L1 = the same for a2/a3, H byte e = the top two
//   bits of a0[e], a1[e], a2[e], a3[e] at bits 0-1, 2-3, 4-5, 6-7. Unpacked in four
//   shift/and/or steps to bytes holding q * 4 (the 6-bit code in bits 2..7, sign in bit 7: no
//   sign-extension step); the int32 accumulator is shifted right by 2 (exact) per group.
//
// flexq_btc (binary tensor cores, mma.sync m16n8k256 .b1 and.popc):
//   lane word 2p + h = bit plane p (two's complement, plane 5 = sign) of row r + 8h over
//   k = 32t .. 32t + 31 (bit b = k 32t + b). Activations as planes [M][G][4 slots][abits] words,
//   word (m, g, t, i) bit b = bit i of qa[m][g * 128 + 32t + b].
//
// Activations for w6_imma / cuBLASLt: int8 [M, K] row-major. Activation scales fp32 [G][M].
// w6_imma's wgmma path (m > 32 on sm_90a) reads B from shared memory in the hardware's k order,
// so its activations carry the weights' K permutation instead: inside each 128 group of token m,
// logical byte k sits at wgmma_act_pos(k, m) (k32 step kk reads bytes 32kk .. 32kk + 31; its byte
// 4t + e must be logical 32t + 8kk + e and byte 16 + 4t + e logical 32t + 8kk + 4 + e), with the
// 16-byte chunks already XOR-swizzled by m % 8 the way wgmma's 128-byte swizzle reads shared
// memory, so that the producer copies each row's chunks to shared memory in order.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define QB_HD __host__ __device__ __forceinline__
#else
#define QB_HD inline
#endif

namespace qb::w6 {

constexpr int group_size = 128;        // K elements per scale group
constexpr int row_tile = 16;           // weight rows per tile (the m16 of the mma)
constexpr int tile_bytes = 1536;       // 16 x 128 x 6 bits
constexpr int tile_words_per_lane = 12;
constexpr int weight_bits = 6;

static_assert(row_tile * group_size * weight_bits / 8 == tile_bytes, "tile = 16 rows x 128 k x 6 bits");
static_assert(tile_bytes == 32 * tile_words_per_lane * 4, "every lane holds 12 words of a tile");

QB_HD int row_tiles(int n) { return (n + row_tile - 1) / row_tile; }

// Bytes of packed weights and of their scales for an [n, k] matrix (k a multiple of 128).
QB_HD long long packed_weight_bytes(int n, int k) { return (long long)row_tiles(n) * (k / group_size) * tile_bytes; }
QB_HD long long packed_scale_bytes(int n, int k) { return (long long)row_tiles(n) * (k / group_size) * row_tile * 2; }

// Word w of lane `lane` inside a tile, as a 32-bit word index from the tile start.
QB_HD int tile_word_index(int lane, int w) { return ((w / 4) * 32 + lane) * 4 + (w % 4); }

// w6_imma: the k offset (inside the group) of byte e of A register `reg` (0..3) of chunk kk.
QB_HD int imma_k_of(int t, int kk, int reg, int e) { return 32 * t + 8 * kk + ((reg >> 1) & 1) * 4 + e; }
// ... and the row offset (inside the tile) of A register `reg` for lane group gid.
QB_HD int imma_row_of(int gid, int reg) { return gid + 8 * (reg & 1); }

// wgmma path: the position inside token m's 128 group of the activation for logical k (a
// permutation of 4-byte words: logical word 8t + c goes to 16-byte chunk c ^ (m % 8), word t).
QB_HD int wgmma_act_pos(int k, int m) { return 16 * (((k >> 2) & 7) ^ (m & 7)) + 4 * (k >> 5) + (k & 3); }

// The four A registers (bytes = 4 * q) of one k32 chunk from its L0, L1, H words.
QB_HD void imma_unpack(uint32_t l0, uint32_t l1, uint32_t h, uint32_t a[4]) {
    a[0] = ((l0 << 2) & 0x3C3C3C3Cu) | ((h << 6) & 0xC0C0C0C0u);
    a[1] = ((l0 >> 2) & 0x3C3C3C3Cu) | ((h << 4) & 0xC0C0C0C0u);
    a[2] = ((l1 << 2) & 0x3C3C3C3Cu) | ((h << 2) & 0xC0C0C0C0u);
    a[3] = ((l1 >> 2) & 0x3C3C3C3Cu) | (h & 0xC0C0C0C0u);
}

// --------------------------------------------------------------------------------------------
// flexq_btc: which plane pairs each m16n8k256 multiply covers.
// x . w = sum_{i,j} c_i c_j 2^(i+j) popc(X_i & W_j) with c = -1 on the sign planes. A k256
// multiply sums two 128-bit halves, so one instruction can cover two plane pairs that share a
// coefficient: A = [W_j | W_j2], B = [X_i | X_i2]. Pairs with equal coefficients are paired
// greedily; a pair left alone gets a zero second half of B. W6A6: 21 multiplies for the 36
// pairs (86% of the k256 work is useful), W6A8: 29 for 48.
// --------------------------------------------------------------------------------------------
struct btc_op {
    int xi, wj;   // first half: activation plane i, weight plane j
    int xi2, wj2; // second half, or -1 (B second half = 0)
    int coef;     // c_i c_j 2^(i+j)
};

template <int ABITS>
struct btc_schedule {
    static constexpr int max_ops = ABITS * weight_bits;
    btc_op ops[max_ops] = {};
    int count = 0;

    constexpr btc_schedule() {
        for (int s = 0; s <= ABITS - 1 + weight_bits - 1; ++s)
            for (int sign = 1; sign >= -1; sign -= 2) {
                int pend_i = -1, pend_j = -1;
                for (int i = 0; i < ABITS; ++i) {
                    const int j = s - i;
                    if (j < 0 || j >= weight_bits) continue;
                    const int c = ((i == ABITS - 1) ? -1 : 1) * ((j == weight_bits - 1) ? -1 : 1);
                    if (c != sign) continue;
                    if (pend_i < 0) {
                        pend_i = i;
                        pend_j = j;
                    } else {
                        ops[count++] = {pend_i, pend_j, i, j, sign * (1 << s)};
                        pend_i = pend_j = -1;
                    }
                }
                if (pend_i >= 0) ops[count++] = {pend_i, pend_j, -1, -1, sign * (1 << s)};
            }
    }
};

} // namespace qb::w6
