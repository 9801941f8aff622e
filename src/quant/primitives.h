// Quantization primitives shared by every method: integer grids, scales, rounding, clamps, and the
// reference dequantization of each format. LibTorch ops only, so they run on the CPU or a GPU.
//
// Precision: every formula is computed in fp32 (inputs are converted to fp32 first). Scales are
// then either kept in fp32 (`scale_format::fp32`, what the activation quantizers of kernels/ use)
// or rounded to fp16 after a clamp to [1e-5, 1e4] (`scale_format::fp16`, FlexQ's weight scales and
// every packed checkpoint); the codes are computed with the scale as stored, so dequantizing the
// stored codes and scales reproduces the fake-quantized tensor exactly. This is bit-identical to
// the CPU reference of the kernels (kernels/quant_pack/w6_ref.cpp: quantize_weights_ref and
// quantize_acts_ref), which tests/quant checks. The paper's released code divides in fp16 (x/scale
// rounded to fp16 before rounding to an integer); fp32 division differs from it only where that
// fp16 rounding moves a value across a rounding boundary.
//
// Formulas (b bits, one group = the elements that share a scale):
//   symmetric:   qmax = 2^(b-1) - 1, scale = absmax / qmax, q = clamp(rint(x / scale), -qmax - 1, qmax)
//                (absmax / qmax means -qmax - 1 never occurs; the clamp only matters for fp16
//                scales rounded down). x ≈ q * scale.
//   asymmetric:  lo = min(min x, 0), hi = max(max x, 0), scale = (hi - lo) / (2^b - 1),
//                zero = rint(-lo / scale), u = clamp(rint(x / scale) + zero, 0, 2^b - 1),
//                x ≈ (u - zero) * scale. Stored shifted by 2^(b-1) so codes fit int8:
//                q = u - 2^(b-1), zero_point = zero - 2^(b-1), x ≈ (q - zero_point) * scale.
//   rint is round half to even (std::nearbyint / at::round). A group whose scale would be 0 (all
//   zeros) gets scale 0 and codes 0 in fp32 mode (the kernels' activation rule) and the clamp
//   floor 1e-5 in fp16 mode (the FlexQ weight rule); both dequantize to exact zeros.
#pragma once
#include "model/llama.h"

#include <ATen/core/Tensor.h>

#include <string>

namespace qb {

// How scales are stored: fp32 as computed, or clamped to [fp16_scale_min, fp16_scale_max] and
// rounded to fp16 (round to nearest even) before the codes are computed.
enum class scale_format { fp32, fp16 };
inline constexpr double fp16_scale_min = 1e-5; // FlexQ's clamp: keeps scales normal fp16 numbers
inline constexpr double fp16_scale_max = 1e4;
const char *scale_format_name(scale_format f); // "fp32" / "fp16"
scale_format scale_format_from_name(const std::string &name);

// Which elements share one scale, for a tensor whose last dimension is the reduction dimension K
// (a weight [N, K] or activations [..., K]).
//   tensor:  one scale for everything (static per-tensor)
//   row:     one per row = per output channel of a weight, per token of activations
//   group:   `group_size` consecutive elements along K within a row (K % group_size == 0)
enum class granularity { tensor, row, group };
const char *granularity_name(granularity g);

struct quant_spec {
    int bits = 8;              // 2..8
    bool symmetric = true;
    granularity gran = granularity::row;
    int64_t group_size = 0;    // only for granularity::group
    scale_format scales = scale_format::fp32;

    // The number of elements of one row that share a scale (K for row, group_size for group).
    int64_t elements_per_scale(int64_t k) const;
    std::string describe() const; // "int6 sym g128 fp16-scales"
};

// A quant_spec from the group convention of the option files: group_size 0 = row, > 0 = group.
quant_spec quant_spec_of(int bits, int64_t group_size, bool symmetric, scale_format scales);

// Why `spec` cannot quantize a tensor with last dimension k ("" when it can).
std::string quant_spec_problem(const quant_spec &spec, int64_t k);

// Quantized form of x [..., K]: codes (int8 container, same shape as x), scales and zero points
// [..., K / elements_per_scale] fp32 (one element for granularity::tensor). Throws qb::error for
// bits outside [2, 8] or a group size that does not divide K.
struct quantized_tensor {
    at::Tensor q;           // int8, shape of x
    at::Tensor scales;      // fp32 [..., groups]; fp16-representable with scale_format::fp16
    at::Tensor zero_points; // fp32 [..., groups], undefined when symmetric
    quant_spec spec;
};
quantized_tensor quantize(const at::Tensor &x, const quant_spec &spec);
// Reference dequantization of any quantized_tensor: fp32, shape of the codes.
at::Tensor dequantize(const quantized_tensor &t);
// quantize then dequantize, returned in x's dtype (fake quantization for accuracy work).
at::Tensor fake_quantize(const at::Tensor &x, const quant_spec &spec);

// The weight form the model holds ([N, K] codes, per-row or per-group scales). Per-tensor
// weights are stored with their one scale repeated per row.
quantized_weight quantize_weight(const at::Tensor &weight, const quant_spec &spec);

// The activation spec of a linear layer (bits 0 = none) as a quant_spec: fp32 scales, per token
// (group_size 0) or per token-group.
quant_spec activation_spec(const activation_quant &a);

} // namespace qb
