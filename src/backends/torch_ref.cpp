// torch_ref: the reference execution of any quantized format — dequantize the weight once to the
// model dtype, then an ordinary matmul. Slow in memory, exact in meaning: every other back-end is
// checked against it.
#include "backends/backend.h"

#include <ATen/ATen.h>

#include <fmt/format.h>

namespace qb {
namespace {

class dense_runtime final : public linear_runtime {
public:
    dense_runtime(at::Tensor w, at::Tensor b, activation_quant act, std::string what)
        : w_(std::move(w)), b_(std::move(b)), act_(act), what_(std::move(what)) {}
    at::Tensor forward(const at::Tensor &x) const override {
        // Activation fake-quant (quantize-dequantize in fp32, back to x's dtype), then the matmul.
        return at::linear(act_.apply(x), w_, b_.defined() ? std::optional<at::Tensor>(b_) : std::nullopt);
    }
    std::string describe() const override { return what_; }

private:
    at::Tensor w_, b_;
    activation_quant act_;
    std::string what_;
};

class torch_ref_backend final : public backend {
public:
    status supports(const linear_layer &, at::Device, at::ScalarType) const override { return status::success(); }

    std::shared_ptr<const linear_runtime> bind(const linear_layer &layer, at::ScalarType dtype) const override {
        const auto &a = layer.act_quant;
        if (!layer.qweight) return std::make_shared<dense_runtime>(layer.weight, layer.bias, a, "dense " + a.describe());
        auto w = layer.qweight->dequantize().to(layer.weight.device(), dtype);
        return std::make_shared<dense_runtime>(
            w, layer.bias, a, fmt::format("dequantized w{} g{} {}", layer.qweight->bits, layer.qweight->group_size, a.describe()));
    }
};

} // namespace

std::unique_ptr<backend> make_torch_ref_backend(const json &) { return std::make_unique<torch_ref_backend>(); }

} // namespace qb
