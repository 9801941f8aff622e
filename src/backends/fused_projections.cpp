// Projections that read the same input (q, k, v; gate, up) bound as one GEMM with their outputs side
// by side. At decode sizes a GEMM is bound by its weight bytes and its launch: LLaMA-2-7B's q, k and v
// as three 4096 x 4096 GEMMs leave most of the H100's SMs idle for part of each, where one 12288 x
// 4096 GEMM fills them (the shape the FlexQ paper benchmarks), and the layer launches two kernels
// fewer.
#include "backends/backend.h"

#include "core/error.h"

#include <ATen/ATen.h>

#include <fmt/format.h>

#include <vector>

namespace qb {

std::shared_ptr<const linear_runtime> backend::bind_fused(std::span<const linear_layer *const>, at::ScalarType, std::string &why_not) const {
    why_not = "the back-end binds one layer at a time";
    return nullptr;
}

linear_layer concatenated_linear(std::span<const linear_layer *const> parts, const std::string &name, std::string &why_not) {
    why_not.clear();
    linear_layer out;
    out.name = name;
    if (parts.size() < 2) {
        why_not = "fewer than two layers to fuse";
        return out;
    }
    const linear_layer &first = *parts.front();
    auto differs = [&](const linear_layer &p, const std::string &what, const std::string &a, const std::string &b) {
        why_not = fmt::format("{} and {} differ in {} ({} vs {})", first.name, p.name, what, a, b);
    };
    for (const auto *pp : parts.subspan(1)) {
        const linear_layer &p = *pp;
        if (p.in_features() != first.in_features()) differs(p, "input features", std::to_string(first.in_features()), std::to_string(p.in_features()));
        else if (p.weight.device() != first.weight.device()) differs(p, "device", first.weight.device().str(), p.weight.device().str());
        else if (p.weight.scalar_type() != first.weight.scalar_type())
            differs(p, "dtype", c10::toString(first.weight.scalar_type()), c10::toString(p.weight.scalar_type()));
        else if (p.bias.defined() != first.bias.defined()) differs(p, "bias", first.bias.defined() ? "yes" : "none", p.bias.defined() ? "yes" : "none");
        else if (p.act_quant.bits != first.act_quant.bits || p.act_quant.group_size != first.act_quant.group_size)
            differs(p, "activation quantization", first.act_quant.describe(), p.act_quant.describe());
        else if (p.qweight.has_value() != first.qweight.has_value())
            differs(p, "weight format", first.qweight ? "quantized" : "dense", p.qweight ? "quantized" : "dense");
        else if (p.qweight && (p.qweight->bits != first.qweight->bits || p.qweight->group_size != first.qweight->group_size ||
                               p.qweight->zero_points.defined() != first.qweight->zero_points.defined() ||
                               p.qweight->q.device() != first.qweight->q.device()))
            differs(p, "quantized weight format", fmt::format("w{} g{}", first.qweight->bits, first.qweight->group_size),
                    fmt::format("w{} g{}", p.qweight->bits, p.qweight->group_size));
        if (!why_not.empty()) return out;
    }
    auto cat = [&](auto member) {
        std::vector<at::Tensor> ts;
        for (const auto *p : parts) ts.push_back(member(*p));
        return at::cat(ts, 0);
    };
    out.weight = cat([](const linear_layer &l) { return l.weight; });
    if (first.bias.defined()) out.bias = cat([](const linear_layer &l) { return l.bias; });
    out.act_quant = first.act_quant;
    if (first.qweight) {
        quantized_weight q;
        q.bits = first.qweight->bits;
        q.group_size = first.qweight->group_size;
        q.q = cat([](const linear_layer &l) { return l.qweight->q; });
        q.scales = cat([](const linear_layer &l) { return l.qweight->scales; });
        if (first.qweight->zero_points.defined()) q.zero_points = cat([](const linear_layer &l) { return l.qweight->zero_points; });
        out.qweight = std::move(q);
    }
    return out;
}

namespace {

// One part's outputs, columns [offset, offset + n) of the fused GEMM's: a view, no copy.
class fused_part_runtime final : public linear_runtime {
public:
    fused_part_runtime(std::shared_ptr<const linear_runtime> fused, int64_t offset, int64_t n) : fused_(std::move(fused)), offset_(offset), n_(n) {}
    at::Tensor forward(const at::Tensor &x) const override { return fused_->forward(x).narrow(-1, offset_, n_); }
    act_codes_request codes_wanted(int64_t m) const override { return fused_->codes_wanted(m); }
    at::Tensor forward_codes(const act_codes &codes, at::IntArrayRef prefix) const override {
        return fused_->forward_codes(codes, prefix).narrow(-1, offset_, n_);
    }
    std::string describe() const override { return fmt::format("outputs {}..{} of {}", offset_, offset_ + n_ - 1, fused_->describe()); }

private:
    std::shared_ptr<const linear_runtime> fused_;
    int64_t offset_, n_;
};

} // namespace

std::string fuse_projections(llama_model &model, const backend &be) {
    struct group {
        const char *name;
        int layers = 0;
        std::string why_not; // the first layer's reason
    };
    group qkv{"q, k, v"}, gate_up{"gate, up"};
    auto fuse = [&](group &g, std::vector<linear_layer *> parts, std::shared_ptr<const linear_runtime> &slot) {
        std::vector<const linear_layer *> cparts(parts.begin(), parts.end());
        std::string why;
        auto rt = be.bind_fused(cparts, model.dtype(), why);
        if (!rt) {
            if (g.why_not.empty()) g.why_not = fmt::format("{}: {}", parts.front()->name, why);
            return;
        }
        slot = rt;
        int64_t offset = 0;
        for (auto *p : parts) {
            p->runtime = std::make_shared<fused_part_runtime>(rt, offset, p->out_features());
            offset += p->out_features();
        }
        ++g.layers;
    };
    for (auto &l : model.layers) {
        fuse(qkv, {&l.q_proj, &l.k_proj, &l.v_proj}, l.qkv);
        fuse(gate_up, {&l.gate_proj, &l.up_proj}, l.gate_up);
    }
    auto say = [&](const group &g) {
        if (g.layers == int(model.layers.size())) return fmt::format("{}: one GEMM in every layer", g.name);
        return fmt::format("{}: one GEMM in {} of {} layers{}", g.name, g.layers, model.layers.size(), g.why_not.empty() ? "" : " (" + g.why_not + ")");
    };
    return say(qkv) + "; " + say(gate_up);
}

} // namespace qb
