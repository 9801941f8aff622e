// Round-to-nearest weight quantization: the plain baseline every other method is measured against.
#include "quant/quantizer.h"

#include "core/error.h"

#include <ATen/ATen.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace qb {

quantized_weight quantize_weight_rtn(const at::Tensor &weight, int bits, int64_t group_size, bool symmetric) {
    TORCH_CHECK(weight.dim() == 2, "weight must be [N, K]");
    TORCH_CHECK(bits >= 2 && bits <= 8, "bits must be in [2, 8], got ", bits);
    const int64_t n = weight.size(0), k = weight.size(1);
    const int64_t g = group_size == 0 ? k : group_size;
    TORCH_CHECK(k % g == 0, "K=", k, " is not a multiple of group_size=", g);
    auto w = weight.to(at::kFloat).reshape({n, k / g, g});
    quantized_weight out;
    out.bits = bits;
    out.group_size = group_size;
    // Scales have a floor so that an all-zero group quantizes to zeros instead of NaN.
    constexpr double min_scale = 1e-10;
    if (symmetric) {
        const double qmax = std::ldexp(1.0, bits - 1) - 1; // 127 for 8 bits: -128 never occurs
        auto scale = (w.abs().amax(-1, true) / qmax).clamp_min(min_scale);
        out.q = at::round(w / scale).clamp(-qmax - 1, qmax).to(at::kChar).reshape({n, k});
        out.scales = scale.reshape({n, k / g});
    } else {
        const double levels = std::ldexp(1.0, bits) - 1;
        auto lo = w.amin(-1, true).clamp_max(0.0), hi = w.amax(-1, true).clamp_min(0.0);
        auto scale = ((hi - lo) / levels).clamp_min(min_scale);
        auto zero = at::round(-lo / scale);
        // Unsigned codes 0..2^b-1 shifted by 2^(b-1) so that they fit the int8 container.
        const double shift = std::ldexp(1.0, bits - 1);
        out.q = (at::round(w / scale) + zero).clamp(0, levels).sub(shift).to(at::kChar).reshape({n, k});
        out.scales = scale.reshape({n, k / g});
        out.zero_points = (zero - shift).reshape({n, k / g});
    }
    return out;
}

namespace {

class none_quantizer final : public quantizer {
public:
    status supports(const llama_model &) const override { return status::success(); }
    json apply(llama_model &model) const override {
        int64_t params = 0;
        for (auto *l : model.linears()) params += l->weight.numel();
        const double bits = 8.0 * double(c10::elementSize(model.dtype()));
        return {{"method", "none"}, {"linear_parameters", params}, {"bits_per_weight", bits}};
    }
};

class rtn_quantizer final : public quantizer {
public:
    explicit rtn_quantizer(const json &o) : bits_(o["w_bits"]), group_(o["group_size"]), symmetric_(o["symmetric"]) {}

    status supports(const llama_model &model) const override {
        for (const auto *l : model.linears())
            if (group_ != 0 && l->in_features() % group_ != 0)
                return status::failure(status_code::unsupported_shape,
                                       fmt::format("rtn: {} has K={}, not a multiple of group_size={}", l->name, l->in_features(), group_));
        return status::success();
    }

    json apply(llama_model &model) const override {
        double err_sum = 0, err_max = 0;
        int64_t params = 0, groups = 0;
        for (auto *l : model.linears()) {
            l->qweight = quantize_weight_rtn(l->weight, bits_, group_, symmetric_);
            auto w = l->weight.to(at::kFloat);
            double rel = (l->qweight->dequantize() - w).norm().item<double>() / std::max(w.norm().item<double>(), 1e-30);
            err_sum += rel;
            err_max = std::max(err_max, rel);
            params += l->weight.numel();
            groups += l->qweight->scales.numel();
        }
        const size_t n_layers = model.linears().size();
        // Storage cost as deployed: b-bit codes plus one fp16 scale (and fp16 zero) per group.
        const double overhead_bits = 16.0 * double(groups) * (symmetric_ ? 1 : 2);
        return {{"method", "rtn"},
                {"w_bits", bits_},
                {"group_size", group_},
                {"symmetric", symmetric_},
                {"linear_parameters", params},
                {"bits_per_weight", bits_ + overhead_bits / double(params)},
                {"weight_rel_error_mean", n_layers ? err_sum / double(n_layers) : 0.0},
                {"weight_rel_error_max", err_max}};
    }

private:
    int bits_;
    int64_t group_;
    bool symmetric_;
};

} // namespace

std::unique_ptr<quantizer> make_none_quantizer(const json &) { return std::make_unique<none_quantizer>(); }
std::unique_ptr<quantizer> make_rtn_quantizer(const json &options) { return std::make_unique<rtn_quantizer>(options); }

} // namespace qb
