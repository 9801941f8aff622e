// The W6Ax grouped GEMM kernel template behind w6_imma and flexq_btc (include from a .cu only).
//
// Weights are the A operand (16 rows per tile), tokens the B operand (8 per tile): at decode the
// weights are the only large stream, and every lane receives its A fragments as its own 16-byte
// chunks (no unpack pass, no exchange between lanes): w6_layout.h puts each lane's 12 words of a
// (16-row, 128-k) tile in three coalesced 512-byte slabs. A warp owns RT row tiles x TT token
// tiles; KS warps of a block split the K groups of the same tile (interleaved) and reduce through
// shared memory in a fixed order (deterministic). Weights come either STAGES groups ahead in
// registers (mid32, tiled) or through a per-warp cp.async ring in shared memory WST groups deep
// (the decode configurations: faster there, measured); activations (small, L1/L2 resident) ride
// a STAGES-deep register pipeline.
// Per group: integer accumulators from the tensor cores (exact), then (acc * sw) * sx in fp32
// (scaled_sum: no int -> float conversion instruction).
// imma_fused_mode (decode8, m <= 8): the warp quantizes its fp16 activations itself instead of
// reading act_quant_int8's codes (act_code.cuh), so that no quantizer kernel precedes the GEMM.
//
// Preconditions (checked by the launchers): k % 128 == 0, m, n >= 1, 16-byte aligned buffers.
#pragma once
#include "common/cuda_check.h"
#include "common/device_info.h"
#include "common/load_hints.cuh"
#include "common/sm90_async.cuh"
#include "quant_pack/act_code.cuh"
#include "quant_pack/w6_gemm.h"
#include "quant_pack/w6_layout.h"
#include "quant_pack/w6_ref.h"

#include <cooperative_groups.h>

#include <cmath>
#include <string>
#include <type_traits>
#include <utility>

namespace qb::w6::detail {

// The promotion's first step, round(sum * sw) for an exact integer sum with |sum| < 2^22, without
// an int32 -> fp32 conversion instruction: the bits of sum added to those of magic = 1.5 * 2^23
// are the fp32 value magic + sum exactly, and -magic * sw is exact for an sw of at most 22
// significant bits (an fp16 scale times a power of two), so the one fma rounds the exact product
// once, as float(sum) * sw would. IADD3 + FFMA instead of I2FP + FMUL: I2FP runs at about half
// the FFMA rate (H200: 1.9 against 3.5 warp instructions per cycle per SM, pipe_probe.cu); the
// wgmma prefill kernel measured 1-2% faster with it, the rest unchanged (docs/kernels.md). Every
// caller's sums stay inside the bound: a group is 128 products of weights in [-32, 31] (times 4 where imma bytes hold 4q) and
// activations in [-128, 127], |sum| <= 128 * 128 * 128 = 2^21.
constexpr float promote_magic = 12582912.0f;
constexpr int32_t promote_magic_bits = 0x4B400000;
__device__ __forceinline__ float scaled_sum(int32_t sum, float sw, float neg_magic_sw) {
    return fmaf(__int_as_float(sum + promote_magic_bits), sw, neg_magic_sw);
}

// WST > 0: the weights go through a per-warp shared-memory ring of WST groups (cp.async) instead
// of registers, so that the bytes in flight are not bounded by the register file; STAGES is then
// the depth of the activations' register pipeline alone (WST a multiple of it).
// SPLIT_MIN: K is split over a cluster (cluster_split) only while every warp keeps at least this
// many groups.
template <int RT_, int TT_, int WN_, int WM_, int KS_, int STAGES_, int MIN_BLOCKS_, int WST_ = 0, int SPLIT_MIN_ = 2>
struct tile_config {
    static constexpr int RT = RT_, TT = TT_, WN = WN_, WM = WM_, KS = KS_, STAGES = STAGES_, MIN_BLOCKS = MIN_BLOCKS_, WST = WST_;
    static constexpr int SPLIT_MIN = SPLIT_MIN_;
    static_assert(WST % STAGES == 0, "the activations' pipeline must divide the weight ring");
    static constexpr int warps = WN * WM * KS;
    static constexpr int threads = warps * 32;
    static constexpr int rows_per_block = WN * RT * row_tile;
    static constexpr int tokens_per_block = WM * TT * 8;
    // Weights read by one warp only (decode shapes): do not let them evict activations from L1.
    static constexpr bool stream_weights = (WM == 1);
};

struct kernel_params {
    int m, n, k, groups, row_tiles;
    const uint4 *__restrict__ w;
    const __half2 *__restrict__ ws;
    const void *__restrict__ act;
    const float *__restrict__ as;
    __half *__restrict__ out;
    int32_t *__restrict__ group_acc;
    const __half *__restrict__ x; // fp16 activations [m, k] when the GEMM quantizes them (imma_fused_mode)
    float qmax;                   // their code range: 31 (A6) or 127 (A8)
    float qmax_rcp;               // RN(1 / qmax)
    bool pdl_trigger_at_entry;    // when a `pdl` successor may launch: see pdl_trigger_at_entry()
};

using qb::cuda::ld_stream;

template <int I>
__device__ __forceinline__ uint32_t word_of(const uint4 (&v)[3]) {
    constexpr int s = I / 4, c = I % 4;
    if constexpr (c == 0) return v[s].x;
    else if constexpr (c == 1) return v[s].y;
    else if constexpr (c == 2) return v[s].z;
    else return v[s].w;
}

__device__ __forceinline__ void mma_s8(int32_t (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ void bmma_and_acc(int32_t (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2, uint32_t a3, uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                 : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3])
                 : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// ---------------------------------------------------------------------------------------------
// w6_imma: 6-bit codes unpacked in registers to int8 (x4), mma.sync m16n8k32 s8.
// ---------------------------------------------------------------------------------------------
struct imma_mode {
    static constexpr int act_words = 8; // 32 activation bytes per lane per group
    // group() leaves the sums in units of 2^sum_log2(): 4x here (bytes hold 4q), so the promotion
    // scales by 1/4 (exact) instead of a shift per accumulator.
    static constexpr int sum_log2() { return -2; }
    static constexpr int raw_words = 0; // activations arrive quantized (act_quant_int8); > 0: fused, fp16 words per lane
    __device__ static void load_act(uint32_t (&a)[act_words], const kernel_params &p, int tok, int g, int t) {
        if (tok < p.m) {
            const uint4 *src = reinterpret_cast<const uint4 *>(static_cast<const int8_t *>(p.act) + size_t(tok) * p.k +
                                                               size_t(g) * group_size + 32 * t);
            const uint4 x = __ldg(src), y = __ldg(src + 1);
            a[0] = x.x, a[1] = x.y, a[2] = x.z, a[3] = x.w, a[4] = y.x, a[5] = y.y, a[6] = y.z, a[7] = y.w;
        } else {
#pragma unroll
            for (int i = 0; i < act_words; ++i) a[i] = 0;
        }
    }

    template <int RT, int TT, int KK>
    __device__ static void chunk(int32_t (&acc)[RT][TT][4], const uint4 (&w)[RT][3], const uint32_t (&a)[TT][act_words]) {
#pragma unroll
        for (int rt = 0; rt < RT; ++rt) {
            uint32_t frag[4];
            imma_unpack(word_of<3 * KK>(w[rt]), word_of<3 * KK + 1>(w[rt]), word_of<3 * KK + 2>(w[rt]), frag);
#pragma unroll
            for (int tt = 0; tt < TT; ++tt) mma_s8(acc[rt][tt], frag, a[tt][2 * KK], a[tt][2 * KK + 1]);
        }
    }

    template <int RT, int TT>
    __device__ static void group(int32_t (&acc)[RT][TT][4], const uint4 (&w)[RT][3], const uint32_t (&a)[TT][act_words]) {
#pragma unroll
        for (int rt = 0; rt < RT; ++rt)
#pragma unroll
            for (int tt = 0; tt < TT; ++tt)
#pragma unroll
                for (int e = 0; e < 4; ++e) acc[rt][tt][e] = 0;
        chunk<RT, TT, 0>(acc, w, a);
        chunk<RT, TT, 1>(acc, w, a);
        chunk<RT, TT, 2>(acc, w, a);
        chunk<RT, TT, 3>(acc, w, a);
    }
};

// ---------------------------------------------------------------------------------------------
// w6_imma with the activation quantizer fused in (decode8, m <= 8): each warp quantizes, from
// fp16, the groups it multiplies, so that no quantizer kernel runs before the GEMM and the GEMM
// waits for nothing. Every row-tile warp repeats the work for its groups (n / 16 times in all),
// which is cheap only while m is small. Codes and scales are bit-identical to act_quant_int8
// (act_code.cuh).
// P = m rounded up to a power of two: the P tokens' 128 values of a group are spread over all 32
// lanes (lane L: token L / (32 / P), values 4P * (L % (32 / P)) onwards), so that m = 1 costs 4
// values per lane instead of 32, and then moved by shuffles to the lanes the mma B fragment needs
// (lane (gid, t): bytes 32t .. 32t + 31 of token gid, as imma_mode::load_act reads them).
// ---------------------------------------------------------------------------------------------
template <int P>
struct imma_fused_mode : imma_mode {
    static_assert(P == 1 || P == 2 || P == 4 || P == 8, "tokens per decode block, rounded up to a power of two");
    static constexpr int lanes_per_token = 32 / P, values = 4 * P, raw_words = values / 2;

    // This lane's fp16 values of group g (zeros past the last token).
    __device__ static void load_raw(uint32_t (&raw)[raw_words], const kernel_params &p, int g, int lane) {
        const int tok = lane / lanes_per_token;
        if (tok < p.m) {
            const __half *src = p.x + size_t(tok) * p.k + size_t(g) * group_size + values * (lane % lanes_per_token);
            if constexpr (raw_words == 2) {
                const uint2 v = __ldg(reinterpret_cast<const uint2 *>(src));
                raw[0] = v.x, raw[1] = v.y;
            } else {
#pragma unroll
                for (int i = 0; i < raw_words / 4; ++i) {
                    const uint4 v = __ldg(reinterpret_cast<const uint4 *>(src) + i);
                    raw[4 * i] = v.x, raw[4 * i + 1] = v.y, raw[4 * i + 2] = v.z, raw[4 * i + 3] = v.w;
                }
            }
        } else {
#pragma unroll
            for (int i = 0; i < raw_words; ++i) raw[i] = 0;
        }
    }

    // The codes of this lane's B fragment and the scales of its output tokens (2t, 2t + 1).
    __device__ static void quantize(const uint32_t (&raw)[raw_words], uint32_t (&a)[act_words], float2 &sx, float qmax, float qmax_rcp, int lane) {
        // The absmax in fp16 pairs (exact), so that the fp32 values need not stay live across the
        // reduction: registers are what limits this kernel to 6 blocks per SM.
        __half2 amax2 = __habs2(*reinterpret_cast<const __half2 *>(&raw[0]));
#pragma unroll
        for (int i = 1; i < raw_words; ++i) amax2 = __hmax2(amax2, __habs2(*reinterpret_cast<const __half2 *>(&raw[i])));
        // Non-negative fp16 values order as their bit patterns: the reduction runs on integers,
        // in one redux.sync when the whole warp holds one token.
        const uint32_t bits2 = *reinterpret_cast<const uint32_t *>(&amax2);
        uint32_t amax_bits = max(bits2 & 0xFFFFu, bits2 >> 16);
        if constexpr (P == 1) {
            amax_bits = __reduce_max_sync(0xffffffffu, amax_bits);
        } else {
#pragma unroll
            for (int off = lanes_per_token / 2; off > 0; off >>= 1) amax_bits = max(amax_bits, __shfl_xor_sync(0xffffffffu, amax_bits, off));
        }
        const act_divisor d = act_divisor_of(__half2float(__ushort_as_half(uint16_t(amax_bits))), qmax, qmax_rcp);
        uint32_t mine[P];
#pragma unroll
        for (int w = 0; w < P; ++w) {
            const float2 lo = __half22float2(*reinterpret_cast<const __half2 *>(&raw[2 * w]));
            const float2 hi = __half22float2(*reinterpret_cast<const __half2 *>(&raw[2 * w + 1]));
            const uint32_t word = pack_code_bytes(act_code_bits(lo.x, d), act_code_bits(lo.y, d), act_code_bits(hi.x, d), act_code_bits(hi.y, d));
            mine[w] = d.scale > 0.f ? word : 0u;
        }
        const int gid = lane >> 2, t = lane & 3;
        if constexpr (P == 8) { // the spread is the fragment layout already
#pragma unroll
            for (int j = 0; j < act_words; ++j) a[j] = mine[j];
        } else {
            // Byte 32t + 4j of token gid is word j % P of lane gid * (32 / P) + (8t + j) / P.
#pragma unroll
            for (int j = 0; j < act_words; ++j) {
                // Lanes gid >= P get another token's codes: their output columns are never stored
                // (and their scales below are 0).
                a[j] = __shfl_sync(0xffffffffu, mine[j % P], gid * lanes_per_token + (8 * t + j) / P);
            }
        }
        const float s0 = __shfl_sync(0xffffffffu, d.scale, 2 * t * lanes_per_token);
        const float s1 = __shfl_sync(0xffffffffu, d.scale, (2 * t + 1) * lanes_per_token);
        sx.x = 2 * t < P ? s0 : 0.f;
        sx.y = 2 * t + 1 < P ? s1 : 0.f;
    }
};

// ---------------------------------------------------------------------------------------------
// flexq_btc: bit planes on the binary tensor cores, m16n8k256 and.popc, two plane pairs with a
// shared coefficient per instruction (btc_schedule in w6_layout.h).
// ---------------------------------------------------------------------------------------------
template <int ABITS>
struct btc_mode {
    static constexpr int act_words = ABITS;
    static constexpr int raw_words = 0;
    static constexpr btc_schedule<ABITS> sched{};
    static constexpr int sum_log2() { return level(0); } // the lowest level's remaining weight (0: plane pair (0, 0))

    __device__ static void load_act(uint32_t (&a)[act_words], const kernel_params &p, int tok, int g, int t) {
        if (tok < p.m) {
            const uint32_t *src = static_cast<const uint32_t *>(p.act) + ((size_t(tok) * p.groups + g) * 4 + t) * ABITS;
            if constexpr (ABITS == 8) {
                const uint4 x = __ldg(reinterpret_cast<const uint4 *>(src)), y = __ldg(reinterpret_cast<const uint4 *>(src) + 1);
                a[0] = x.x, a[1] = x.y, a[2] = x.z, a[3] = x.w, a[4] = y.x, a[5] = y.y, a[6] = y.z, a[7] = y.w;
            } else {
#pragma unroll
                for (int i = 0; i < ABITS; i += 2) {
                    const uint2 x = __ldg(reinterpret_cast<const uint2 *>(src + i));
                    a[i] = x.x, a[i + 1] = x.y;
                }
            }
        } else {
#pragma unroll
            for (int i = 0; i < act_words; ++i) a[i] = 0;
        }
    }

    static constexpr int level(int op) { return __builtin_ctz(sched.ops[op].coef > 0 ? sched.ops[op].coef : -sched.ops[op].coef); }

    // Horner over the coefficient exponent: ops run from the highest 2^s down; before each new
    // level both accumulators double. Positive and negative coefficients chain into separate
    // accumulators through the mma's own C operand, so no per-op temporaries or multiplies.
    template <int RT, int TT, int OP>
    __device__ static void op(int32_t (&pos)[RT][TT][4], int32_t (&neg)[RT][TT][4], const uint4 (&w)[RT][3],
                              const uint32_t (&a)[TT][act_words]) {
        constexpr btc_op o = sched.ops[OP];
        constexpr int j2 = o.wj2 >= 0 ? o.wj2 : o.wj;
        constexpr int shift = OP == sched.count - 1 ? 0 : level(OP + 1) - level(OP);
#pragma unroll
        for (int rt = 0; rt < RT; ++rt) {
            const uint32_t a0 = word_of<2 * o.wj>(w[rt]), a1 = word_of<2 * o.wj + 1>(w[rt]);
            const uint32_t a2 = word_of<2 * j2>(w[rt]), a3 = word_of<2 * j2 + 1>(w[rt]);
#pragma unroll
            for (int tt = 0; tt < TT; ++tt) {
                if constexpr (shift > 0) {
#pragma unroll
                    for (int e = 0; e < 4; ++e) {
                        pos[rt][tt][e] <<= shift;
                        neg[rt][tt][e] <<= shift;
                    }
                }
                const uint32_t b1 = o.xi2 >= 0 ? a[tt][o.xi2 >= 0 ? o.xi2 : 0] : 0u;
                if constexpr (o.coef > 0) bmma_and_acc(pos[rt][tt], a0, a1, a2, a3, a[tt][o.xi], b1);
                else bmma_and_acc(neg[rt][tt], a0, a1, a2, a3, a[tt][o.xi], b1);
            }
        }
    }

    template <int RT, int TT, int... OPS>
    __device__ static void all_ops(int32_t (&pos)[RT][TT][4], int32_t (&neg)[RT][TT][4], const uint4 (&w)[RT][3],
                                   const uint32_t (&a)[TT][act_words], std::integer_sequence<int, OPS...>) {
        (op<RT, TT, sched.count - 1 - OPS>(pos, neg, w, a), ...); // highest level first
    }

    template <int RT, int TT>
    __device__ static void group(int32_t (&acc)[RT][TT][4], const uint4 (&w)[RT][3], const uint32_t (&a)[TT][act_words]) {
        int32_t neg[RT][TT][4];
#pragma unroll
        for (int rt = 0; rt < RT; ++rt)
#pragma unroll
            for (int tt = 0; tt < TT; ++tt)
#pragma unroll
                for (int e = 0; e < 4; ++e) acc[rt][tt][e] = neg[rt][tt][e] = 0;
        all_ops<RT, TT>(acc, neg, w, a, std::make_integer_sequence<int, sched.count>{});
        // The sum over 2^sum_log2 units (the lowest level's remaining weight, applied by the
        // promotion's exact power-of-two scale instead of a shift here).
#pragma unroll
        for (int rt = 0; rt < RT; ++rt)
#pragma unroll
            for (int tt = 0; tt < TT; ++tt)
#pragma unroll
                for (int e = 0; e < 4; ++e) acc[rt][tt][e] = acc[rt][tt][e] - neg[rt][tt][e];
    }
};

// ---------------------------------------------------------------------------------------------
// The kernel.
// ---------------------------------------------------------------------------------------------
template <class Mode, class Cfg>
__global__ void __launch_bounds__(Cfg::threads, Cfg::MIN_BLOCKS) w6_gemm_kernel(const kernel_params p) {
    constexpr int RT = Cfg::RT, TT = Cfg::TT, WN = Cfg::WN, KS = Cfg::KS, STAGES = Cfg::STAGES;
    constexpr int AW = Mode::act_words;
    // The next layer's GEMM (launched with `pdl`) may take the SMs our last wave leaves idle and
    // stream its weights while we drain; it waits for us before it reads activations or writes.
    if (p.pdl_trigger_at_entry) qb::cuda::sm90::pdl_launch_dependents();
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int gid = lane >> 2, t = lane & 3;
    const int ks = warp % KS, wmn = warp / KS, wn = wmn % WN, wm = wmn / WN;
    // K is split over the KS warps of a block and over the gridDim.z blocks of a thread-block
    // cluster (split-K across blocks, reduced through distributed shared memory): small-N shapes
    // then fill the machine in whole waves instead of leaving a partial last wave.
    const int ksplit = KS * gridDim.z, kfirst = blockIdx.z * KS + ks;
    const int nt0 = (blockIdx.y * WN + wn) * RT;               // first row tile of this warp
    const int m0 = (blockIdx.x * Cfg::WM + wm) * TT * 8;       // first token of this warp
    const int n_my = kfirst < p.groups ? (p.groups - kfirst + ksplit - 1) / ksplit : 0; // groups kfirst, kfirst + ksplit, ...
    auto group_of = [&](int i) { return kfirst + i * ksplit; }; // this warp's i-th K group

    float accf[RT][TT][4];     // fp32 output accumulators
#pragma unroll
    for (int rt = 0; rt < RT; ++rt)
#pragma unroll
        for (int tt = 0; tt < TT; ++tt)
#pragma unroll
            for (int e = 0; e < 4; ++e) accf[rt][tt][e] = 0.f;
    // f(n, m, rt, tt, e) for each of this warp's accumulators that lands inside the output (the
    // mma D fragment: rows gid / gid + 8, tokens 2t / 2t + 1 of each 8-token column).
    auto for_each_output = [&](auto &&f) {
#pragma unroll
        for (int rt = 0; rt < RT; ++rt)
#pragma unroll
            for (int tt = 0; tt < TT; ++tt)
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int n = (nt0 + rt) * row_tile + gid + 8 * (e >> 1), m = m0 + tt * 8 + 2 * t + (e & 1);
                    if (n < p.n && m < p.m) f(n, m, rt, tt, e);
                }
    };

    auto load_w = [&](uint4 (&dst)[RT][3], __half2 (&sdst)[RT], int i) {
        const int g = group_of(i);
#pragma unroll
        for (int rt = 0; rt < RT; ++rt) {
            const int nt = nt0 + rt;
            if (nt < p.row_tiles) {
                const size_t tile = size_t(nt) * p.groups + g;
                const uint4 *src = p.w + tile * (tile_bytes / 16) + lane;
#pragma unroll
                for (int j = 0; j < 3; ++j) dst[rt][j] = Cfg::stream_weights ? ld_stream(src + 32 * j) : __ldg(src + 32 * j);
                sdst[rt] = __ldg(p.ws + tile * 8 + gid);
            } else {
#pragma unroll
                for (int j = 0; j < 3; ++j) dst[rt][j] = make_uint4(0, 0, 0, 0);
                sdst[rt] = __floats2half2_rn(0.f, 0.f);
            }
        }
    };

    // f(s, i) for this warp's groups i in order, s = i % D the pipeline slot: slots unrolled so that
    // they index register arrays with constants.
    auto for_each_slot = [&](auto depth_c, auto &&f) {
        constexpr int D = decltype(depth_c)::value;
        for (int i0 = 0; i0 < n_my; i0 += D)
#pragma unroll
            for (int s = 0; s < D; ++s)
                if (i0 + s < n_my) f(s, i0 + s);
    };

    // The activations' register pipeline: int8 codes and their scales, or (fused) raw fp16 values.
    constexpr bool fused = Mode::raw_words > 0;
    static_assert(!fused || (TT == 1 && Cfg::WM == 1), "the fused quantizer serves one 8-token tile per warp");
    constexpr int RAW = fused ? Mode::raw_words : 1;  // (one unused word otherwise)
    uint32_t ab[STAGES][TT][AW];
    float2 sxb[STAGES][TT];
    uint32_t rawb[STAGES][RAW];
    auto load_a = [&](int s, int i) {
        const int g = group_of(i);
        if constexpr (fused) {
            Mode::load_raw(rawb[s], p, g, lane);
        } else {
#pragma unroll
            for (int tt = 0; tt < TT; ++tt) {
                Mode::load_act(ab[s][tt], p, m0 + tt * 8 + gid, g, t);
                const int ta = m0 + tt * 8 + 2 * t;
                sxb[s][tt].x = ta < p.m ? __ldg(p.as + size_t(g) * p.m + ta) : 0.f;
                sxb[s][tt].y = ta + 1 < p.m ? __ldg(p.as + size_t(g) * p.m + ta + 1) : 0.f;
            }
        }
    };
    // One K group of this warp: exact integers from the tensor cores, then (acc * sw) * sx in fp32.
    auto group = [&](const uint4 (&wf)[RT][3], const __half2 (&sw2)[RT], const uint32_t (&af)[TT][AW], const float2 (&sxc)[TT], int i) {
        int32_t acc[RT][TT][4];
        Mode::template group<RT, TT>(acc, wf, af);
        constexpr float unit = Mode::sum_log2() >= 0 ? float(1 << Mode::sum_log2()) : 1.0f / float(1 << -Mode::sum_log2());
#pragma unroll
        for (int rt = 0; rt < RT; ++rt) {
            const float2 sw = __half22float2(sw2[rt]); // .x row gid, .y row gid + 8
            const float sw0 = unit * sw.x, sw1 = unit * sw.y; // exact: powers of two
            const float nb0 = -promote_magic * sw0, nb1 = -promote_magic * sw1;
#pragma unroll
            for (int tt = 0; tt < TT; ++tt) {
                accf[rt][tt][0] = fmaf(scaled_sum(acc[rt][tt][0], sw0, nb0), sxc[tt].x, accf[rt][tt][0]);
                accf[rt][tt][1] = fmaf(scaled_sum(acc[rt][tt][1], sw0, nb0), sxc[tt].y, accf[rt][tt][1]);
                accf[rt][tt][2] = fmaf(scaled_sum(acc[rt][tt][2], sw1, nb1), sxc[tt].x, accf[rt][tt][2]);
                accf[rt][tt][3] = fmaf(scaled_sum(acc[rt][tt][3], sw1, nb1), sxc[tt].y, accf[rt][tt][3]);
            }
        }
        if (p.group_acc) {
            const int g = group_of(i);
            for_each_output([&](int n, int m, int rt, int tt, int e) {
                const int32_t v = acc[rt][tt][e];
                p.group_acc[(size_t(m) * p.n + n) * p.groups + g] = Mode::sum_log2() >= 0 ? v * (1 << Mode::sum_log2()) : v >> -Mode::sum_log2();
            });
        }
    };
    // Group i with the activations of pipeline slot s (quantized here when fused).
    auto run_group = [&](const uint4 (&wf)[RT][3], const __half2 (&sw2)[RT], int s, int i) {
        if constexpr (fused) {
            uint32_t af[1][AW];
            float2 sxc[1];
            Mode::quantize(rawb[s], af[0], sxc[0], p.qmax, p.qmax_rcp, lane);
            group(wf, sw2, af, sxc, i);
        } else {
            group(wf, sw2, ab[s], sxb[s], i);
        }
    };

    // Programmatic dependent launch: the weights (the big stream) are requested before this, while
    // the activation quantization kernel before us may still run; activations only after it.
    auto start_acts = [&] {
        qb::cuda::sm90::pdl_wait();
#pragma unroll
        for (int s = 0; s < STAGES; ++s)
            if (s < n_my) load_a(s, s);
    };

    if constexpr (Cfg::WST == 0) {
        uint4 wb[STAGES][RT][3]; // weight fragments, STAGES groups ahead
        __half2 sb[STAGES][RT];  // weight scales (row gid, row gid + 8)
        // Activations ride in the same STAGES-deep pipeline as the weights: at decode sizes they are
        // few bytes but each load is a full memory latency, which one-ahead prefetch left exposed.
#pragma unroll
        for (int s = 0; s < STAGES; ++s)
            if (s < n_my) load_w(wb[s], sb[s], s);
        start_acts();

        for_each_slot(std::integral_constant<int, STAGES>{}, [&](int s, int i) {
            run_group(wb[s], sb[s], s, i);
            if (i + STAGES < n_my) {
                load_w(wb[s], sb[s], i + STAGES);
                load_a(s, i + STAGES);
            }
        });
    } else {
        // The weight ring: each lane copies and later reads back its own 16-byte chunks, so the
        // warp needs no barrier, only its cp.async groups (one per K group, empty past the end).
        constexpr int WST = Cfg::WST;
        __shared__ uint4 wring[Cfg::warps][WST][RT][3][32];
        __shared__ __half2 sring[Cfg::warps][WST][RT][32];
        auto issue_w = [&](int slot, int i) {
            if (i < n_my) {
                const int g = group_of(i);
#pragma unroll
                for (int rt = 0; rt < RT; ++rt) {
                    const int nt = nt0 + rt;
                    const bool real = nt < p.row_tiles; // past the last tile: zero-filled
                    const size_t tile = real ? size_t(nt) * p.groups + g : 0;
                    const uint4 *src = p.w + tile * (tile_bytes / 16) + lane;
#pragma unroll
                    for (int j = 0; j < 3; ++j)
                        qb::cuda::sm90::cp_async16_stream(qb::cuda::sm90::smem_addr(&wring[warp][slot][rt][j][lane]), src + 32 * j, real ? 16u : 0u);
                    qb::cuda::sm90::cp_async4(qb::cuda::sm90::smem_addr(&sring[warp][slot][rt][lane]), p.ws + tile * 8 + gid, real ? 4u : 0u);
                }
            }
            qb::cuda::sm90::cp_async_commit();
        };
#pragma unroll
        for (int s = 0; s < WST; ++s) issue_w(s, s);
        start_acts();
        for_each_slot(std::integral_constant<int, WST>{}, [&](int s, int i) {
            qb::cuda::sm90::cp_async_wait<WST - 1>(); // group i has landed
            uint4 wcur[RT][3];
            __half2 scur[RT];
#pragma unroll
            for (int rt = 0; rt < RT; ++rt) {
#pragma unroll
                for (int j = 0; j < 3; ++j) wcur[rt][j] = wring[warp][s][rt][j][lane];
                scur[rt] = sring[warp][s][rt][lane];
            }
            issue_w(s, i + WST); // the slot's reads above precede this refill (same thread)
            run_group(wcur, scur, s % STAGES, i);
            if (i + STAGES < n_my) load_a(s % STAGES, i + STAGES);
        });
    }

    if (!p.pdl_trigger_at_entry) qb::cuda::sm90::pdl_launch_dependents(); // weights all read
    // Block reduction over the KS warps (fixed order), then over the cluster's blocks (fixed order).
    constexpr int per_lane = RT * TT * 4;
    if constexpr (KS > 1) {
        __shared__ float red[KS - 1][Cfg::WN * Cfg::WM][per_lane][32];
        if (ks > 0) {
#pragma unroll
            for (int rt = 0; rt < RT; ++rt)
#pragma unroll
                for (int tt = 0; tt < TT; ++tt)
#pragma unroll
                    for (int e = 0; e < 4; ++e) red[ks - 1][wmn][(rt * TT + tt) * 4 + e][lane] = accf[rt][tt][e];
        }
        __syncthreads();
        if (ks == 0)
            for (int k2 = 0; k2 < KS - 1; ++k2)
#pragma unroll
                for (int rt = 0; rt < RT; ++rt)
#pragma unroll
                    for (int tt = 0; tt < TT; ++tt)
#pragma unroll
                        for (int e = 0; e < 4; ++e) accf[rt][tt][e] += red[k2][wmn][(rt * TT + tt) * 4 + e][lane];
    }
    if constexpr (Cfg::WM == 1) { // cluster split-K exists for the decode configurations only (cluster_split)
      if (gridDim.z > 1) {
        namespace cg = cooperative_groups;
        __shared__ float part[Cfg::WN * Cfg::WM][per_lane][32];
        cg::cluster_group cluster = cg::this_cluster();
        if (ks == 0) {
#pragma unroll
            for (int rt = 0; rt < RT; ++rt)
#pragma unroll
                for (int tt = 0; tt < TT; ++tt)
#pragma unroll
                    for (int e = 0; e < 4; ++e) part[wmn][(rt * TT + tt) * 4 + e][lane] = accf[rt][tt][e];
        }
        cluster.sync(); // every block's partial is in its shared memory
        if (blockIdx.z == 0 && ks == 0) {
            for (unsigned r = 1; r < gridDim.z; ++r) {
                const float(*remote)[per_lane][32] = cluster.map_shared_rank(part, r);
#pragma unroll
                for (int rt = 0; rt < RT; ++rt)
#pragma unroll
                    for (int tt = 0; tt < TT; ++tt)
#pragma unroll
                        for (int e = 0; e < 4; ++e) accf[rt][tt][e] += remote[wmn][(rt * TT + tt) * 4 + e][lane];
            }
        }
        cluster.sync(); // the other blocks' shared memory stays alive until rank 0 has read it
      }
    }
    if (ks != 0 || blockIdx.z != 0) return;
    for_each_output([&](int n, int m, int rt, int tt, int e) { p.out[size_t(m) * p.n + n] = __float2half_rn(accf[rt][tt][e]); });
}

// ---------------------------------------------------------------------------------------------
// Configurations by M (named predicates, see w6_config_name):
//   decode8:  m <= 8   one token tile, 4 warps split K, weights through a 2-group shared-memory
//                      ring per warp (cp.async), activations 2 groups ahead, 6 blocks per SM
//   decode16: m <= 32  two token tiles, two row tiles per warp, the same 2-group ring (from 17
//                      tokens on, blocks of 16 tokens side by side: the second reads the weights
//                      from L2; 18% faster at m = 32 than mid32, measured)
//   mid32:    m <= 64  four token tiles (32 tokens) per block, 4 warps split K (m > 32 only
//                      where the wgmma path is not built or not allowed)
//   tiled:    m > 64   block = 64 rows x 128 tokens, 8 warps (2 x 4), no K split
// The decode rings replaced a register pipeline 3 (decode8) / 2 (decode16) groups deep: on the
// H100 that reached 80% / 65% of the read-only kernel's speed at M = 1 / 16 (geomean over the 21
// benchmark shapes), the rings 89% / 78%; deeper rings (4, 6) and register pipelines of other
// depths, block shapes and occupancies were slower (docs/kernels.md).
// decode8 splits K only when each warp keeps >= 8 groups: on the H100 4096 x 4096 and 5120 x 5120
// (32 and 40 groups) ran 4-9% faster unsplit at M = 1-8, 4096 x 11008 (86 groups) 10-15% slower.
using cfg_decode8 = tile_config<1, 1, 1, 1, 4, 2, 6, 2, 8>;
// decode8 with KS warps per block (decode8_k_split): the same 80-register, 24-warps-per-SM budget
// (and the same 90 KB of shared memory per SM: KS rings of 3 KB per block).
template <int KS>
using cfg_decode8_ks = tile_config<1, 1, 1, 1, KS, 2, 24 / KS, 2, 8>;
static_assert(std::is_same_v<cfg_decode8, cfg_decode8_ks<4>>);
// decode8 with two row tiles per warp (decode8_row_tiles_per_warp): 2 warps split K, 8 blocks of
// 128 registers per SM (at 96-112 registers, i.e. 20-24 such warps per SM, ptxas spills).
using cfg_decode8_rt2 = tile_config<2, 1, 1, 1, 2, 2, 8, 2, 8>;
using cfg_decode16 = tile_config<2, 2, 1, 1, 4, 2, 3, 2>;
using cfg_mid32 = tile_config<1, 4, 1, 1, 4, 2, 2>;
using cfg_tiled = tile_config<2, 4, 2, 4, 1, 1, 1>;

// Split-K over a cluster of cs blocks, for layers too small to give every SM a block: cs is the
// largest power of two (<= 8) with blocks * cs <= the resident-block slots, each warp keeping at
// least SPLIT_MIN groups. Measured on the H100 (results/kernels): splitting shapes that already
// fill half the slots or more was slower (cluster co-scheduling costs more than the partial last
// wave), so those run with cs = 1.
using qb::cuda::current_device_sm_count;

template <class Cfg>
int cluster_split(unsigned blocks, int groups) {
    if (Cfg::WM != 1) return 1; // the token-tiled configuration has work enough
    const unsigned slots = unsigned(current_device_sm_count()) * Cfg::MIN_BLOCKS;
    int cs = 1;
    while (cs < 8 && blocks * cs * 2 <= slots && groups >= Cfg::SPLIT_MIN * (cs * 2) * Cfg::KS) cs *= 2;
    return cs;
}

// The kernel arguments of a call (shared with w6_imma's wgmma path).
inline kernel_params params_of(const gemm_args &a) {
    kernel_params p;
    p.m = a.m;
    p.n = a.n;
    p.k = a.k;
    p.groups = a.k / group_size;
    p.row_tiles = row_tiles(a.n);
    p.w = static_cast<const uint4 *>(a.w);
    p.ws = reinterpret_cast<const __half2 *>(a.w_scales);
    p.act = a.act;
    p.as = a.act_scales;
    p.out = a.out;
    p.group_acc = a.group_acc;
    p.x = a.act_fp16;
    p.qmax = a.a_bits == 6 ? 31.f : 127.f;
    p.qmax_rcp = 1.f / p.qmax;
    p.pdl_trigger_at_entry = true;
    return p;
}

// Where a block lets a `pdl` successor launch. At entry, the successor's blocks take the slots our
// grid leaves free and stream their weights while we run: on the H100 under graph replay that made
// w6_imma 5-7% faster in the geomean at M = 1-16 and the 4096 x 4096 .. 5120 x 5120 layers 18-21%.
// One exception measured there: a grid of one-warp blocks (decode8 unsplit, M = 1 on the 28672-row
// layers: 1792 blocks of 24 slots per SM) that fills more than half of the slots ran 12-13% slower
// chained than alone (LLaMA-2-70B gate_up 64.9 -> 72.7 us), and 11-13% faster than that when it
// triggers after its main loop, i.e. as its weight stream ends (flexq_btc there: 24%; the fused
// quantizer's one-warp grids, which did not slow down chained, the same either way). Grids of 2-8
// warps per block, above half of the slots or not, measured the same or slower with the late
// trigger (up to +10% on the small layers), so only one-warp grids move it.
inline bool pdl_trigger_at_entry(int threads_per_block, unsigned blocks, unsigned resident_slots) {
    return !(threads_per_block == 32 && blocks * 2 > resident_slots && blocks <= resident_slots);
}

template <class Mode, class Cfg>
status launch_cfg(const gemm_args &a, cudaStream_t stream) {
    kernel_params p = params_of(a);
    const unsigned gx = unsigned((a.m + Cfg::tokens_per_block - 1) / Cfg::tokens_per_block);
    const unsigned gy = unsigned((p.row_tiles + Cfg::WN * Cfg::RT - 1) / (Cfg::WN * Cfg::RT));
    if (gy > 65535u) return status::failure(status_code::unsupported_shape, "n too large for the grid (n=" + std::to_string(a.n) + ")");
    const int cs = cluster_split<Cfg>(gx * gy, p.groups);
    p.pdl_trigger_at_entry = pdl_trigger_at_entry(Cfg::threads, gx * gy * unsigned(cs), unsigned(current_device_sm_count()) * Cfg::MIN_BLOCKS);
    cudaLaunchConfig_t lc = {};
    lc.gridDim = dim3(gx, gy, cs);
    lc.blockDim = dim3(Cfg::threads);
    lc.stream = stream;
    cudaLaunchAttribute attr[2];
    int na = 0;
    if (cs > 1) {
        attr[na].id = cudaLaunchAttributeClusterDimension;
        attr[na].val.clusterDim.x = 1;
        attr[na].val.clusterDim.y = 1;
        attr[na].val.clusterDim.z = cs;
        ++na;
    }
    if (a.pdl) {
        attr[na].id = cudaLaunchAttributeProgrammaticStreamSerialization;
        attr[na].val.programmaticStreamSerializationAllowed = 1;
        ++na;
    }
    lc.attrs = attr;
    lc.numAttrs = na;
    QB_CUDA_TRY(cudaLaunchKernelEx(&lc, w6_gemm_kernel<Mode, Cfg>, p));
    QB_CUDA_TRY_LAUNCH();
    return status::success();
}

inline status check_args(const char *who, const gemm_args &a) {
    if (auto st = check_w6_shape(who, a.m, a.n, a.k); !st) return st;
    const bool fused = a.act_fp16 != nullptr;
    if (!a.w || !a.w_scales || !a.out || (!fused && (!a.act || !a.act_scales)))
        return status::failure(status_code::invalid_argument, std::string(who) + ": null buffer");
    const void *act = fused ? static_cast<const void *>(a.act_fp16) : a.act;
    if (reinterpret_cast<uintptr_t>(a.w) % 16 || reinterpret_cast<uintptr_t>(act) % 16)
        return status::failure(status_code::invalid_argument, std::string(who) + ": weights and activations must be 16-byte aligned");
    return status::success();
}

template <class Mode>
status launch_decode8(const gemm_args &a, cudaStream_t stream) {
    const int sms = current_device_sm_count();
    if constexpr (std::is_same_v<Mode, imma_mode>)
        if (decode8_row_tiles_per_warp(a.m, a.n, sms) == 2) return launch_cfg<Mode, cfg_decode8_rt2>(a, stream);
    switch (decode8_k_split(a.m, a.n, a.k / group_size, sms)) {
    case 1: return launch_cfg<Mode, cfg_decode8_ks<1>>(a, stream);
    case 2: return launch_cfg<Mode, cfg_decode8_ks<2>>(a, stream);
    case 3: return launch_cfg<Mode, cfg_decode8_ks<3>>(a, stream);
    case 6: return launch_cfg<Mode, cfg_decode8_ks<6>>(a, stream);
    case 8: return launch_cfg<Mode, cfg_decode8_ks<8>>(a, stream);
    default: return launch_cfg<Mode, cfg_decode8>(a, stream);
    }
}

template <class Mode>
status launch_by_m(const gemm_args &a, cudaStream_t stream) {
    if (a.m <= 8) return launch_decode8<Mode>(a, stream);
    if (a.m <= 32) return launch_cfg<Mode, cfg_decode16>(a, stream);
    if (a.m <= 64) return launch_cfg<Mode, cfg_mid32>(a, stream);
    return launch_cfg<Mode, cfg_tiled>(a, stream);
}

} // namespace qb::w6::detail
