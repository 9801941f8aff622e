// CPU reference of the W6Ax grouped GEMM and of everything around it (torch-free, CUDA-free,
// runs in the cpu test suite): fp16 conversion, weight and activation quantization, the packers
// of kernels/quant_pack/w6_layout.h, and the int64 grouped GEMM every kernel is checked against.
//
// Formulas (the kernels reproduce the quantizers and the integer sums bit for bit):
//   weights  (per row, per 128 group): scale = fp16(clamp(absmax / 31, 1e-5, 1e4)) in fp32,
//            q = clamp(rint(w / float(scale)), -32, 31)        (rint: round half to even)
//   activations (per token, per 128 group, or per token over all K for cuBLASLt):
//            scale = absmax / qmax in fp32 (qmax 31 or 127; scale 0 when absmax is 0),
//            q = clamp(rint(x / scale), -qmax - 1, qmax), 0 for a zero group
//   GEMM:    acc[m, n, g] = sum_{k in g} qa[m, k] * qw[n, k]        (exact, int64 -> int32)
//            out[m, n]    = sum_g (float(acc) * float(sw[n, g])) * sx[g, m]   in fp32, g ascending
//            (the kernels: the same products, fused into fmas, summed in their own order; tests
//            compare them to the double-precision sum within a bound for that, not bit for bit)
#pragma once
#include "core/status.h"

#include <cstdint>
#include <vector>

namespace qb::w6 {

// IEEE binary16 <-> binary32, round to nearest even (the same results as __float2half_rn).
uint16_t float_to_half(float f);
float half_to_float(uint16_t h);

struct quantized_weights {
    int n = 0, k = 0;
    std::vector<int8_t> q;        // [n, k] in [-32, 31]
    std::vector<uint16_t> scales; // [n, k / 128] fp16 bits
};
quantized_weights quantize_weights_ref(const float *w, int n, int k);

struct quantized_acts {
    int m = 0, k = 0, bits = 8, group = 128; // group == k: one scale per token
    std::vector<int8_t> q;     // [m, k]
    std::vector<float> scales; // [k / group][m]
};
// x: fp16 bits [m, k] row-major. bits 6 or 8; group 128 or k.
quantized_acts quantize_acts_ref(const uint16_t *x, int m, int k, int bits, int group);

// Packed weights in the layouts of w6_layout.h: bytes [NT][G][1536], scales [NT][G][16] fp16
// (as half2 pairs (row i, row i + 8)).
struct packed_weights {
    int n = 0, k = 0;
    std::vector<uint8_t> data;
    std::vector<uint16_t> scales;
};
packed_weights pack_weights_imma(const quantized_weights &w);
packed_weights pack_weights_btc(const quantized_weights &w);
// Inverse of pack_weights_imma (codes and scales), for round-trip tests.
quantized_weights unpack_weights_imma(const packed_weights &p);

// Codes [m, k] reordered inside each 128 group for w6_imma's wgmma path (w6_layout.h wgmma_act_pos).
std::vector<int8_t> order_acts_wgmma_ref(const int8_t *q, int m, int k);

// Activation bit planes [m][G][4][bits] words (w6_layout.h).
std::vector<uint32_t> pack_act_planes_ref(const int8_t *q, int m, int k, int bits);

// acc [m][n][G] int32, exact (int64 accumulation, checked to fit).
std::vector<int32_t> gemm_group_acc_ref(const int8_t *qa, const int8_t *qw, int m, int n, int k);
// out [m][n] from group accumulators: fp32 in the order of the header; out64 in double (for tolerances).
std::vector<float> gemm_scale_ref(const std::vector<int32_t> &acc, const float *sx, const uint16_t *sw, int m, int n, int k);
std::vector<double> gemm_scale_ref_f64(const std::vector<int32_t> &acc, const float *sx, const uint16_t *sw, int m, int n, int k,
                                       std::vector<double> *abs_sum = nullptr);

// Shape checks shared by the back-ends: k a positive multiple of 128, m, n positive.
status check_w6_shape(const char *who, int m, int n, int k);

} // namespace qb::w6
