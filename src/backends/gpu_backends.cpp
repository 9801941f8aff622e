// LibTorch adapters of the CUDA kernel back-ends (kernels/): fp16 (cuBLAS), cublaslt_w8a8,
// cublas_w8a8_legacy, w6_imma, flexq_btc, w6ax. Each answers supports() with a reason before any
// work (CPU tensors, dtypes, shapes, weight formats), packs the layer's quantized weight once in
// bind(), and at forward() runs the fused activation quantizer and the GEMM on the current CUDA
// stream. Kernel statuses become qb::error naming the layer's values.
#include "backends/backend.h"
#include "config.h"
#include "model/tensor_rows.h"

#if QBENCH_HAVE_CUDA
#include "cublas_gemm/cublas_gemm.h"
#include "flexq_btc/flexq_btc.h"
#include "model/half_ptr.h"
#include "quant_pack/act_quant.h"
#include "quant_pack/producer_quant.h"
#include "quant_pack/w6_layout.h"
#include "quant_pack/w6_ref.h"
#include "w6_imma/w6_imma.h"
#include "w6ax/w6ax.h"

#include <ATen/ATen.h>
#include <ATen/cuda/CUDAContext.h>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <mutex>
#include <optional>
#include <span>

namespace qb {
namespace {

using namespace qb::w6;

cudaStream_t current_stream() { return at::cuda::getCurrentCUDAStream().stream(); }

void throw_if(const status &st, const std::string &what) {
    if (!st.ok()) fail("{}: {}", what, st.reason);
}

// One cuBLAS/cuBLASLt context for all adapters (handles and a 32 MB workspace are per process).
cublas_context &shared_blas() {
    static std::once_flag once;
    static cublas_context *ctx = nullptr;
    std::call_once(once, [] {
        ctx = new cublas_context();
        throw_if(ctx->init(), "cuBLAS initialization");
    });
    return *ctx;
}

status common_checks(const char *who, const linear_layer &layer, at::Device device, at::ScalarType dtype) {
    if (!device.is_cuda())
        return status::failure(status_code::unsupported_arch, fmt::format("{}: needs a CUDA device (device={})", who, device.str()));
    if (dtype != at::kHalf)
        return status::failure(status_code::unsupported_dtype,
                               fmt::format("{}: runs fp16 activations (dtype={}); use dtype: fp16", who, c10::toString(dtype)));
    if (layer.weight.defined() && !layer.weight.is_cuda() && !layer.weight.is_cpu())
        return status::failure(status_code::unsupported_arch, fmt::format("{}: weight of {} is on {}", who, layer.name, layer.weight.device().str()));
    return status::success();
}

at::Tensor as_2d(const at::Tensor &x, int64_t k, const char *who) {
    if (!x.is_cuda()) fail("{}: input is on {} (needs CUDA)", who, x.device().str());
    if (x.scalar_type() != at::kHalf) fail("{}: input dtype {} (needs fp16)", who, c10::toString(x.scalar_type()));
    if (x.size(-1) != k) fail("{}: input has {} features, the layer {}", who, x.size(-1), k);
    return x.reshape({-1, k}).contiguous();
}

// out [m, n] -> [prefix..., n] (+ bias).
at::Tensor finish(at::Tensor out, at::IntArrayRef prefix, const at::Tensor &bias) {
    auto sizes = prefix.vec();
    sizes.push_back(out.size(1));
    out = out.view(sizes);
    return bias.defined() ? out + bias.to(out.scalar_type()) : out;
}

at::Tensor finish(at::Tensor out, const at::Tensor &x, const at::Tensor &bias) { return finish(std::move(out), x.sizes().slice(0, x.dim() - 1), bias); }

// ---------------------------------------------------------------------------------------------
// W6 back-ends
// ---------------------------------------------------------------------------------------------
enum class w6_kind { imma, btc, autopick };

// act_codes_request::layout for the W6 back-ends is act_quant.h's int8_order, both ways.
int layout_of(int8_order order) { return int(order); }
int8_order order_of(int layout) {
    if (layout != int(int8_order::natural) && layout != int(int8_order::wgmma_k)) fail("activation codes: unknown int8 layout {}", layout);
    return int8_order(layout);
}

int act_bits_for(const json &o, const std::string &layer_name) {
    const std::string list = o.value("a8_layers", std::string());
    size_t pos = 0;
    while (pos <= list.size()) {
        const size_t end = std::min(list.find(',', pos), list.size());
        const std::string item = list.substr(pos, end - pos);
        if (!item.empty() && layer_name.find(item) != std::string::npos) return 8;
        pos = end + 1;
    }
    return o.value("a_bits", 6);
}

// A layer's activation bits: what its quantizer set (layer.act_quant), else the back-end options.
int layer_act_bits(const json &o, const linear_layer &layer) {
    return layer.act_quant.enabled() ? layer.act_quant.bits : act_bits_for(o, layer.name);
}

// The parts' names joined, naming their concatenation ("layers.0.self_attn.q_proj+k_proj+v_proj").
std::string fused_name(std::span<const linear_layer *const> parts) {
    const std::string &first = parts.front()->name;
    const size_t dot = first.rfind('.');
    const std::string prefix = dot == std::string::npos ? std::string() : first.substr(0, dot + 1);
    std::string name = first;
    for (const auto *p : parts.subspan(1)) name += "+" + (!prefix.empty() && p->name.starts_with(prefix) ? p->name.substr(prefix.size()) : p->name);
    return name;
}

// The parts as one layer for a back-end's bind_fused, unless its options turn fusing off or they
// cannot be concatenated (why_not says which).
std::optional<linear_layer> fusable(const json &o, std::span<const linear_layer *const> parts, std::string &why_not) {
    if (!o.value("fuse_projections", true)) why_not = "fuse_projections: false";
    else if (parts.empty()) why_not = "no layers to fuse";
    if (!why_not.empty()) return std::nullopt;
    auto layer = concatenated_linear(parts, fused_name(parts), why_not);
    if (!why_not.empty()) return std::nullopt;
    return layer;
}

// be.bind(layer) where be.supports(layer) says yes; null with its reason otherwise.
std::shared_ptr<const linear_runtime> bind_if_supported(const backend &be, const linear_layer &layer, at::ScalarType dtype, std::string &why_not) {
    if (auto st = be.supports(layer, layer.weight.device(), dtype); !st) {
        why_not = st.reason;
        return nullptr;
    }
    return be.bind(layer, dtype);
}

class w6_runtime final : public linear_runtime {
public:
    w6_runtime(w6_kind kind, int a_bits, int64_t n, int64_t k, at::Tensor w_imma, at::Tensor w_btc, at::Tensor scales, at::Tensor bias,
               std::string what)
        : kind_(kind), a_bits_(a_bits), n_(n), k_(k), w_imma_(std::move(w_imma)), w_btc_(std::move(w_btc)), scales_(std::move(scales)),
          bias_(std::move(bias)), what_(std::move(what)) {}

    const char *who() const { return kind_ == w6_kind::imma ? "w6_imma" : kind_ == w6_kind::btc ? "flexq_btc" : "w6ax"; }

    // flexq_btc (bit planes) for m tokens, else w6_imma (int8 codes).
    bool uses_btc(int m) const {
        if (kind_ == w6_kind::autopick) return w6ax_choose(m, int(n_), int(k_), a_bits_) == w6ax_choice::w6ax_choice_btc && w_btc_.defined();
        return kind_ == w6_kind::btc;
    }

    gemm_args args_for(int m, bool btc, at::Tensor &out) const {
        gemm_args a;
        a.m = m, a.n = int(n_), a.k = int(k_), a.a_bits = a_bits_;
        a.w = btc ? w_btc_.data_ptr() : w_imma_.data_ptr();
        a.w_scales = half_ptr(scales_);
        a.out = half_ptr(out);
        return a;
    }

    // w6_imma's int8 codes, in the order its configuration for m reads (layout = int8_order).
    act_codes_request codes_wanted(int64_t m) const override {
        if (m < 1 || m > (1 << 24) || uses_btc(int(m))) return {};
        return {a_bits_, layout_of(w6_imma_act_order(int(m)))};
    }

    at::Tensor forward_codes(const act_codes &codes, at::IntArrayRef prefix) const override {
        const int64_t m = codes.q.size(0);
        const auto wanted = codes_wanted(m);
        if (!(codes.format == wanted) || codes.q.dim() != 2 || codes.q.size(1) != k_ || codes.q.scalar_type() != at::kChar)
            fail("{} {}: codes of a{} layout {} [{}] do not match what it takes for m={} (a{} layout {})", who(), what_, codes.format.bits,
                 codes.format.layout, fmt::join(codes.q.sizes(), ", "), m, wanted.bits, wanted.layout);
        auto out = at::empty({m, n_}, codes.q.options().dtype(at::kHalf));
        gemm_args a = args_for(int(m), false, out);
        a.act = codes.q.data_ptr();
        a.act_scales = codes.scales.data_ptr<float>();
        a.pdl = true; // weights stream while the producer finishes
        throw_if(w6_imma_run(a, current_stream()), fmt::format("{} {} (m={}, codes from the producer)", who(), what_, m));
        return finish(out, prefix, bias_);
    }

    at::Tensor forward(const at::Tensor &x_in) const override {
        const char *who = this->who();
        auto x = as_2d(x_in, k_, who);
        const int m = int(x.size(0)), groups = int(k_ / group_size);
        const bool btc = uses_btc(m);
        auto opts = x.options();
        auto out = at::empty({m, n_}, opts);
        const auto stream = current_stream();
        const auto *xh = half_ptr(x);
        gemm_args a = args_for(m, btc, out);
        // Where the measured tables say so (w6ax_fuse_act: small layers at small m), the GEMM
        // quantizes x itself (same codes, no quantizer kernel; it reads x in 8- and 16-byte pieces,
        // so a view off that alignment takes the other path).
        if (!btc && w6ax_fuse_act(m, int(n_), int(k_), a_bits_) && reinterpret_cast<uintptr_t>(xh) % 16 == 0) {
            a.act_fp16 = xh;
            throw_if(w6_imma_run(a, stream), fmt::format("{} {} (m={}, quantizer fused)", who, what_, m));
            return finish(out, x_in, bias_);
        }
        auto sx = at::empty({groups, m}, opts.dtype(at::kFloat));
        at::Tensor act;
        if (btc) {
            act = at::empty({m, groups, 4, a_bits_}, opts.dtype(at::kInt));
            throw_if(act_quant_planes(xh, m, int(k_), a_bits_, reinterpret_cast<uint32_t *>(act.data_ptr<int32_t>()), sx.data_ptr<float>(), stream),
                     fmt::format("{} {}", who, what_));
        } else {
            act = at::empty({m, k_}, opts.dtype(at::kChar));
            throw_if(act_quant_int8(xh, m, int(k_), a_bits_, act.data_ptr<int8_t>(), sx.data_ptr<float>(), stream, w6_imma_act_order(m)),
                     fmt::format("{} {}", who, what_));
        }
        a.act = act.data_ptr();
        a.act_scales = sx.data_ptr<float>();
        a.pdl = true;
        throw_if(btc ? flexq_btc_run(a, stream) : w6_imma_run(a, stream), fmt::format("{} {} (m={})", who, what_, m));
        return finish(out, x_in, bias_);
    }
    std::string describe() const override { return what_; }

private:
    w6_kind kind_;
    int a_bits_;
    int64_t n_, k_;
    at::Tensor w_imma_, w_btc_, scales_, bias_;
    std::string what_;
};

// RMSNorm and SiLU x up writing w6_imma's codes (kernels/quant_pack/producer_quant.h).
class w6_producer final : public activation_producer {
public:
    act_codes rms_norm_codes(const at::Tensor &x_in, const at::Tensor &gain, double eps, act_codes_request want, at::Tensor *y) const override {
        auto x = as_2d(x_in, x_in.size(-1), "rmsnorm_quant_int8");
        auto g = gain.to(x.device(), at::kHalf).contiguous();
        return produce(x_in, x, want, y, "RMSNorm with codes", [&](int m, int k, __half *yp, const act_codes_out &out) {
            return rmsnorm_quant_int8(half_ptr(x), half_ptr(g), float(eps), m, k, yp, out, current_stream(), /*pdl=*/true);
        });
    }
    act_codes add_rms_norm_codes(const at::Tensor &x_in, const at::Tensor &delta_in, const at::Tensor &gain, double eps, act_codes_request want,
                                 at::Tensor &sum) const override {
        if (delta_in.sizes() != x_in.sizes())
            fail("add_rmsnorm_quant_int8: x [{}] and delta [{}] differ in shape", fmt::join(x_in.sizes(), ", "), fmt::join(delta_in.sizes(), ", "));
        auto x = as_2d(x_in, x_in.size(-1), "add_rmsnorm_quant_int8"), delta = as_2d(delta_in, delta_in.size(-1), "add_rmsnorm_quant_int8");
        auto g = gain.to(x.device(), at::kHalf).contiguous();
        auto s = at::empty_like(x);
        auto codes = produce(x_in, x, want, nullptr, "residual add + RMSNorm with codes", [&](int m, int k, __half *yp, const act_codes_out &out) {
            return add_rmsnorm_quant_int8(half_ptr(x), half_ptr(delta), half_ptr(g), float(eps), m, k, half_ptr(s), yp, out, current_stream(), /*pdl=*/true);
        });
        sum = s.view(x_in.sizes());
        return codes;
    }
    act_codes silu_mul_codes(const at::Tensor &gate_in, const at::Tensor &up_in, act_codes_request want, at::Tensor *y) const override {
        if (up_in.sizes() != gate_in.sizes())
            fail("silu_mul_quant_int8: gate [{}] and up [{}] differ in shape", fmt::join(gate_in.sizes(), ", "), fmt::join(up_in.sizes(), ", "));
        const int64_t k = gate_in.size(-1);
        for (const auto *t : {&gate_in, &up_in})
            if (!t->is_cuda() || t->scalar_type() != at::kHalf)
                fail("silu_mul_quant_int8: input is {} on {} (needs fp16 on CUDA)", c10::toString(t->scalar_type()), t->device().str());
        // Read in place where both have one row stride (slices of a fused gate_up GEMM's output).
        auto gate = rows_of(gate_in, k), up = rows_of(up_in, k);
        if (gate.ld != up.ld || gate.ld % 4) gate = rows_of(gate_in.contiguous(), k), up = rows_of(up_in.contiguous(), k);
        return produce(gate_in, gate.rows, want, y, "SiLU x up with codes", [&](int m, int, __half *yp, const act_codes_out &out) {
            return silu_mul_quant_int8(half_ptr(gate.rows), half_ptr(up.rows), int(gate.ld), m, int(k), yp, out, current_stream(), /*pdl=*/true);
        });
    }
    std::string describe() const override { return "RMSNorm and SiLU x up write w6_imma's int8 codes (producer_quant)"; }

private:
    // Allocates the codes (and y when asked) for the 2-d input `in2` of original shape `in`, runs
    // launch(m, k, y or null, codes) and returns the codes.
    template <class Launch>
    static act_codes produce(const at::Tensor &in, const at::Tensor &in2, act_codes_request want, at::Tensor *y, const char *what, Launch &&launch) {
        if (want.bits != 6 && want.bits != 8) fail("activation producer: bits must be 6 or 8 (bits={})", want.bits);
        const int64_t m = in2.size(0), k = in2.size(1);
        act_codes c{want, at::empty({m, k}, in2.options().dtype(at::kChar)), at::empty({k / group_size, m}, in2.options().dtype(at::kFloat))};
        at::Tensor yt = y ? at::empty({m, k}, in2.options()) : at::Tensor();
        const act_codes_out out{c.q.data_ptr<int8_t>(), c.scales.data_ptr<float>(), want.bits, order_of(want.layout)};
        throw_if(launch(int(m), int(k), y ? half_ptr(yt) : nullptr, out), what);
        if (y) *y = yt.view(in.sizes());
        return c;
    }
};

class w6_backend final : public backend {
public:
    w6_backend(w6_kind kind, json options) : kind_(kind), options_(std::move(options)) {}

    const char *name() const { return kind_ == w6_kind::imma ? "w6_imma" : kind_ == w6_kind::btc ? "flexq_btc" : "w6ax"; }

    status supports(const linear_layer &layer, at::Device device, at::ScalarType dtype) const override {
        if (auto st = common_checks(name(), layer, device, dtype); !st) return st;
        const int a_bits = layer_act_bits(options_, layer);
        if (layer.act_quant.enabled() && layer.act_quant.group_size != group_size)
            return status::failure(status_code::unsupported_option,
                                   fmt::format("{}: {} asks for activations {}; the kernels quantize per token in groups of 128", name(),
                                               layer.name, layer.act_quant.describe()));
        if (a_bits != 6 && a_bits != 8)
            return status::failure(status_code::unsupported_option, fmt::format("{}: a_bits must be 6 or 8 (a_bits={})", name(), a_bits));
        if (!layer.qweight)
            return status::failure(status_code::unsupported_option,
                                   fmt::format("{}: {} has no quantized weight (needs a W6 g128 symmetric quantizer)", name(), layer.name));
        const auto &q = *layer.qweight;
        if (q.bits > 6 || q.group_size != group_size || q.zero_points.defined())
            return status::failure(status_code::unsupported_option,
                                   fmt::format("{}: {} is w{} g{}{}; needs symmetric weights of at most 6 bits in groups of 128", name(),
                                               layer.name, q.bits, q.group_size, q.zero_points.defined() ? " asymmetric" : ""));
        const auto n = layer.out_features(), k = layer.in_features();
        if (n > (1 << 24) || k > (1 << 24))
            return status::failure(status_code::unsupported_shape, fmt::format("{}: {} is too large (n={}, k={})", name(), layer.name, n, k));
        return w6_imma_supports(1, int(n), int(k), a_bits); // k % 128 with the values
    }

    std::shared_ptr<const linear_runtime> bind(const linear_layer &layer, at::ScalarType dtype) const override {
        if (auto st = supports(layer, layer.weight.device(), dtype); !st) fail("{}: cannot bind {}: {}", name(), layer.name, st.reason);
        const auto &q = *layer.qweight;
        const int n = int(layer.out_features()), k = int(layer.in_features());
        const int a_bits = layer_act_bits(options_, layer);
        // Host packing, once per layer: codes and scales as the kernels read them. The W6 format
        // stores fp16 scales (6.125 bits/weight): the quantizer's fp32 scales are rounded here.
        quantized_weights hw;
        hw.n = n;
        hw.k = k;
        auto codes = q.q.to(at::kCPU, at::kChar).contiguous();
        hw.q.assign(codes.data_ptr<int8_t>(), codes.data_ptr<int8_t>() + size_t(n) * k);
        auto sc = q.scales.to(at::kCPU, at::kFloat).contiguous();
        hw.scales.resize(size_t(n) * (k / group_size));
        for (size_t i = 0; i < hw.scales.size(); ++i) hw.scales[i] = float_to_half(sc.data_ptr<float>()[i]);
        for (auto v : hw.q)
            if (v < -32 || v > 31) fail("{}: {} has a code {} outside [-32, 31]", name(), layer.name, int(v));
        const auto dev = layer.weight.device();
        auto upload = [&](const packed_weights &p) {
            return at::from_blob(const_cast<uint8_t *>(p.data.data()), {int64_t(p.data.size())}, at::kByte).to(dev);
        };
        at::Tensor w_imma, w_btc, scales;
        packed_weights pi;
        if (kind_ != w6_kind::btc) {
            pi = pack_weights_imma(hw);
            w_imma = upload(pi);
        }
        if (kind_ == w6_kind::btc || (kind_ == w6_kind::autopick && w6ax_may_use_btc(n, k, a_bits))) {
            auto pb = pack_weights_btc(hw);
            w_btc = upload(pb);
            if (pi.scales.empty()) pi.scales = pb.scales;
        }
        scales = at::from_blob(pi.scales.data(), {int64_t(pi.scales.size())}, at::kShort).to(dev).view(at::kHalf);
        return std::make_shared<w6_runtime>(kind_, a_bits, n, k, w_imma, w_btc, scales, layer.bias,
                                            fmt::format("{} w6a{} g128 (n={}, k={})", name(), a_bits, n, k));
    }

    std::shared_ptr<const linear_runtime> bind_fused(std::span<const linear_layer *const> parts, at::ScalarType dtype, std::string &why_not) const override {
        auto layer = fusable(options_, parts, why_not);
        if (!layer) return nullptr;
        // Bits by each part's own name (a8_layers) or quantizer: one GEMM runs one activation width.
        const int a_bits = layer_act_bits(options_, *parts.front());
        for (const auto *p : parts)
            if (const int b = layer_act_bits(options_, *p); b != a_bits) {
                why_not = fmt::format("{} takes a{} activations, {} a{}", parts.front()->name, a_bits, p->name, b);
                return nullptr;
            }
        layer->act_quant = {a_bits, group_size};
        return bind_if_supported(*this, *layer, dtype, why_not);
    }

    std::shared_ptr<const activation_producer> producer() const override {
        if (kind_ == w6_kind::btc || !options_.value("act_producer", true)) return nullptr; // flexq_btc reads bit planes
        return std::make_shared<w6_producer>();
    }

private:
    w6_kind kind_;
    json options_;
};

// ---------------------------------------------------------------------------------------------
// cuBLAS baselines
// ---------------------------------------------------------------------------------------------
enum class blas_kind { fp16, lt_w8a8, legacy };

class blas_runtime final : public linear_runtime {
public:
    blas_runtime(blas_kind kind, at::Tensor w, at::Tensor sw, at::Tensor bias, std::string what)
        : kind_(kind), w_(std::move(w)), sw_(std::move(sw)), bias_(std::move(bias)), what_(std::move(what)) {}

    at::Tensor forward(const at::Tensor &x_in) const override {
        const int64_t n = kind_ == blas_kind::legacy ? w_.size(1) : w_.size(0), k = kind_ == blas_kind::legacy ? w_.size(0) : w_.size(1);
        auto x = as_2d(x_in, k, what_.c_str());
        const int m = int(x.size(0));
        auto opts = x.options();
        auto out = at::empty({m, n}, opts);
        const auto stream = current_stream();
        auto &blas = shared_blas();
        const auto *xh = half_ptr(x);
        auto *oh = half_ptr(out);
        if (kind_ == blas_kind::fp16) {
            throw_if(blas.gemm_fp16(m, int(n), int(k), xh, half_ptr(w_), oh, stream), what_);
            return finish(out, x_in, bias_);
        }
        auto xq = at::empty({m, k}, opts.dtype(at::kChar));
        auto sx = at::empty({m}, opts.dtype(at::kFloat));
        auto acc = at::empty({m, n}, opts.dtype(at::kInt));
        throw_if(act_quant_token(xh, m, int(k), xq.data_ptr<int8_t>(), sx.data_ptr<float>(), stream), what_);
        if (kind_ == blas_kind::lt_w8a8) {
            throw_if(blas.gemm_w8a8_lt(m, int(n), int(k), xq.data_ptr<int8_t>(), w_.data_ptr<int8_t>(), sx.data_ptr<float>(), sw_.data_ptr<float>(),
                                       oh, acc.data_ptr<int32_t>(), stream),
                     what_);
        } else {
            throw_if(blas.gemm_w8a8_legacy(m, int(n), int(k), xq.data_ptr<int8_t>(), w_.data_ptr<int8_t>(), acc.data_ptr<int32_t>(), stream), what_);
            throw_if(scale_epilogue_i32(m, int(n), acc.data_ptr<int32_t>(), sx.data_ptr<float>(), sw_.data_ptr<float>(), oh, stream), what_);
        }
        return finish(out, x_in, bias_);
    }
    std::string describe() const override { return what_; }

private:
    blas_kind kind_;
    at::Tensor w_, sw_, bias_;
    std::string what_;
};

class blas_backend final : public backend {
public:
    blas_backend(blas_kind kind, json options) : kind_(kind), options_(std::move(options)) {}
    const char *name() const { return kind_ == blas_kind::fp16 ? "fp16" : kind_ == blas_kind::lt_w8a8 ? "cublaslt_w8a8" : "cublas_w8a8_legacy"; }

    status supports(const linear_layer &layer, at::Device device, at::ScalarType dtype) const override {
        if (auto st = common_checks(name(), layer, device, dtype); !st) return st;
        const auto &act = layer.act_quant;
        if (kind_ == blas_kind::fp16) {
            if (act.enabled())
                return status::failure(status_code::unsupported_option,
                                       fmt::format("fp16: {} asks for activations {}; this back-end runs 16-bit activations", layer.name,
                                                   act.describe()));
            return status::success();
        }
        if (act.enabled() && (act.bits != 8 || act.group_size != 0))
            return status::failure(status_code::unsupported_option,
                                   fmt::format("{}: {} asks for activations {}; this back-end quantizes to int8 per token", name(),
                                               layer.name, act.describe()));
        if (layer.qweight) {
            const auto &q = *layer.qweight;
            if (q.bits > 8 || q.group_size != 0 || q.zero_points.defined())
                return status::failure(status_code::unsupported_option,
                                       fmt::format("{}: {} is w{} g{}; needs symmetric per-channel (group_size 0) weights of at most 8 bits, "
                                                   "or none (then the weight is quantized per channel to int8 at bind)",
                                                   name(), layer.name, q.bits, q.group_size));
        }
        return w8a8_lt_supports(1, int(layer.out_features()), int(layer.in_features()));
    }

    std::shared_ptr<const linear_runtime> bind(const linear_layer &layer, at::ScalarType dtype) const override {
        if (auto st = supports(layer, layer.weight.device(), dtype); !st) fail("{}: cannot bind {}: {}", name(), layer.name, st.reason);
        const auto dev = layer.weight.device();
        if (kind_ == blas_kind::fp16) {
            auto w = layer.qweight ? layer.qweight->dequantize() : layer.weight;
            return std::make_shared<blas_runtime>(kind_, w.to(dev, at::kHalf).contiguous(), at::Tensor(), layer.bias,
                                                  fmt::format("fp16 cuBLAS{}", layer.qweight ? " (dequantized weight)" : ""));
        }
        at::Tensor q, s;
        if (layer.qweight) {
            q = layer.qweight->q.to(at::kChar);
            s = layer.qweight->scales.to(at::kFloat).reshape({-1});
        } else { // per-channel symmetric int8, round half to even, computed in fp32
            auto w = layer.weight.to(at::kFloat);
            s = (w.abs().amax(1) / 127.0).clamp_min(1e-10);
            q = at::round(w / s.unsqueeze(1)).clamp(-128, 127).to(at::kChar);
        }
        if (kind_ == blas_kind::legacy) q = q.t(); // the paper's NN call reads [K, N]
        return std::make_shared<blas_runtime>(kind_, q.to(dev).contiguous(), s.to(dev).contiguous(), layer.bias,
                                              fmt::format("{} w8a8 per-channel x per-token", name()));
    }

    std::shared_ptr<const linear_runtime> bind_fused(std::span<const linear_layer *const> parts, at::ScalarType dtype, std::string &why_not) const override {
        const auto layer = fusable(options_, parts, why_not);
        return layer ? bind_if_supported(*this, *layer, dtype, why_not) : nullptr;
    }

private:
    blas_kind kind_;
    json options_;
};

} // namespace

std::unique_ptr<backend> make_w6_imma_backend(const json &o) { return std::make_unique<w6_backend>(w6_kind::imma, o); }
std::unique_ptr<backend> make_flexq_btc_backend(const json &o) { return std::make_unique<w6_backend>(w6_kind::btc, o); }
std::unique_ptr<backend> make_w6ax_backend(const json &o) { return std::make_unique<w6_backend>(w6_kind::autopick, o); }
std::unique_ptr<backend> make_fp16_backend(const json &o) { return std::make_unique<blas_backend>(blas_kind::fp16, o); }
std::unique_ptr<backend> make_cublaslt_w8a8_backend(const json &o) { return std::make_unique<blas_backend>(blas_kind::lt_w8a8, o); }
std::unique_ptr<backend> make_cublas_w8a8_legacy_backend(const json &o) { return std::make_unique<blas_backend>(blas_kind::legacy, o); }

} // namespace qb
#endif
