// Quantization primitives (formulas and precision: primitives.h).
#include "quant/primitives.h"

#include "core/error.h"

#include <ATen/ATen.h>

#include <fmt/format.h>

#include <cmath>

namespace qb {

const char *scale_format_name(scale_format f) { return f == scale_format::fp16 ? "fp16" : "fp32"; }

scale_format scale_format_from_name(const std::string &name) {
    if (name == "fp16") return scale_format::fp16;
    if (name == "fp32") return scale_format::fp32;
    fail("unknown scale format '{}' (expected fp16 or fp32)", name);
}

const char *granularity_name(granularity g) {
    switch (g) {
    case granularity::tensor: return "per-tensor";
    case granularity::row: return "per-row";
    case granularity::group: return "per-group";
    }
    return "?";
}

int64_t quant_spec::elements_per_scale(int64_t k) const { return gran == granularity::group ? group_size : k; }

std::string quant_spec::describe() const {
    const std::string where = gran == granularity::group ? fmt::format("g{}", group_size) : granularity_name(gran);
    return fmt::format("int{} {} {} {}-scales", bits, symmetric ? "sym" : "asym", where, scale_format_name(scales));
}

quant_spec quant_spec_of(int bits, int64_t group_size, bool symmetric, scale_format scales) {
    quant_spec s;
    s.bits = bits;
    s.symmetric = symmetric;
    s.gran = group_size > 0 ? granularity::group : granularity::row;
    s.group_size = group_size > 0 ? group_size : 0;
    s.scales = scales;
    return s;
}

std::string quant_spec_problem(const quant_spec &spec, int64_t k) {
    if (spec.bits < 2 || spec.bits > 8) return fmt::format("bits must be in [2, 8] (bits={})", spec.bits);
    if (spec.gran == granularity::group) {
        if (spec.group_size <= 0) return fmt::format("group size must be positive (group_size={})", spec.group_size);
        if (k % spec.group_size != 0) return fmt::format("K={} is not a multiple of group_size={}", k, spec.group_size);
    }
    if (k <= 0) return fmt::format("K must be positive (K={})", k);
    return "";
}

namespace {

// Divides by a scalar through a full tensor: CUDA's div with a CPU scalar multiplies by the
// reciprocal, which is not the correctly rounded quotient the kernel references compute.
at::Tensor div_exact(const at::Tensor &a, double b) { return a / at::full_like(a, b); }

at::Tensor store_scales(at::Tensor scale, scale_format f) {
    if (f == scale_format::fp32) return scale;
    return scale.clamp(fp16_scale_min, fp16_scale_max).to(at::kHalf).to(at::kFloat);
}

// [rows, groups, elements] view of x in fp32 for the spec's granularity.
at::Tensor grouped_fp32(const at::Tensor &x, const quant_spec &spec) {
    auto xf = x.to(at::kFloat).contiguous();
    const int64_t k = x.size(-1);
    if (spec.gran == granularity::tensor) return xf.reshape({1, 1, -1});
    const int64_t e = spec.elements_per_scale(k);
    return xf.reshape({-1, k / e, e});
}

std::vector<int64_t> scales_shape(const at::Tensor &x, const quant_spec &spec) {
    if (spec.gran == granularity::tensor) return {1};
    auto sizes = x.sizes().vec();
    sizes.back() = x.size(-1) / spec.elements_per_scale(x.size(-1));
    return sizes;
}

} // namespace

quantized_tensor quantize(const at::Tensor &x, const quant_spec &spec) {
    if (!x.defined() || x.dim() < 1) fail("quantize: needs a tensor with at least one dimension");
    if (std::string why = quant_spec_problem(spec, x.size(-1)); !why.empty()) fail("quantize ({}): {}", spec.describe(), why);
    auto g = grouped_fp32(x, spec);
    quantized_tensor out;
    out.spec = spec;
    if (spec.symmetric) {
        const double qmax = std::ldexp(1.0, spec.bits - 1) - 1;
        auto scale = store_scales(div_exact(g.abs().amax(-1, true), qmax), spec.scales); // [R, G, 1]
        auto q = at::where(scale > 0, at::round(g / scale), at::zeros_like(g)).clamp(-qmax - 1, qmax);
        out.q = q.to(at::kChar).reshape(x.sizes());
        out.scales = scale.reshape(scales_shape(x, spec));
    } else {
        const double levels = std::ldexp(1.0, spec.bits) - 1, shift = std::ldexp(1.0, spec.bits - 1);
        auto lo = g.amin(-1, true).clamp_max(0.0), hi = g.amax(-1, true).clamp_min(0.0);
        auto scale = store_scales(div_exact(hi - lo, levels), spec.scales);
        auto positive = scale > 0;
        // An fp16 scale rounded down can push -lo / scale just past the top code: clamp the zero.
        auto zero = at::where(positive, at::round(-lo / scale), at::zeros_like(lo)).clamp(0, levels);
        auto u = at::where(positive, at::round(g / scale) + zero, zero.expand_as(g)).clamp(0, levels);
        out.q = (u - shift).to(at::kChar).reshape(x.sizes());
        out.scales = scale.reshape(scales_shape(x, spec));
        out.zero_points = (zero - shift).reshape(scales_shape(x, spec));
    }
    return out;
}

at::Tensor dequantize(const quantized_tensor &t) {
    const auto &spec = t.spec;
    auto q = grouped_fp32(t.q, spec);
    const int64_t groups = q.size(1);
    auto s = t.scales.to(at::kFloat).reshape({-1, groups, 1});
    if (t.zero_points.defined()) q = q - t.zero_points.to(at::kFloat).reshape({-1, groups, 1});
    return (q * s).reshape(t.q.sizes());
}

at::Tensor fake_quantize(const at::Tensor &x, const quant_spec &spec) { return dequantize(quantize(x, spec)).to(x.scalar_type()); }

quantized_weight quantize_weight(const at::Tensor &weight, const quant_spec &spec) {
    if (!weight.defined() || weight.dim() != 2) fail("quantize_weight: expected a [N, K] weight, got {} dimensions", weight.defined() ? weight.dim() : 0);
    auto t = quantize(weight, spec);
    quantized_weight w;
    w.bits = spec.bits;
    w.q = t.q;
    const int64_t n = weight.size(0);
    if (spec.gran == granularity::tensor) {
        // The model's weight form has a scale per row at least: repeat the single scale.
        w.scales = t.scales.reshape({1, 1}).expand({n, 1}).contiguous();
        if (t.zero_points.defined()) w.zero_points = t.zero_points.reshape({1, 1}).expand({n, 1}).contiguous();
        w.group_size = 0;
    } else {
        w.scales = t.scales;
        w.zero_points = t.zero_points;
        w.group_size = spec.gran == granularity::group ? spec.group_size : 0;
    }
    return w;
}

quant_spec activation_spec(const activation_quant &a) { return quant_spec_of(a.bits, a.group_size, true, scale_format::fp32); }

// activation_quant (declared in model/llama.h) lives here, beside the formulas it applies.
at::Tensor activation_quant::apply(const at::Tensor &x) const {
    if (!enabled()) return x;
    return fake_quantize(x, activation_spec(*this));
}

std::string activation_quant::describe() const {
    if (!enabled()) return "a16";
    return group_size > 0 ? fmt::format("a{} g{}", bits, group_size) : fmt::format("a{} per-token", bits);
}

} // namespace qb
