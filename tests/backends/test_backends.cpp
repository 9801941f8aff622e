// Kernel back-end adapters (src/backends/gpu_backends.cpp).
//   suite backends (cpu, CI): supports() refuses what cannot run, with the values in the reason
//     (CPU device, dtypes, weight formats, K % 128), before any CUDA call;
//   suite gpu (H100): every CUDA back-end against torch_ref on the same layer (NMSE per
//     activation width, thresholds below), and the W6 back-ends against each other (same integers:
//     equal to fp16 rounding).
#include "backends/backend.h"
#include "config.h"
#include "quant/quantizer.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <doctest/doctest.h>

#include <string>

using namespace qb;

namespace {

json w6_opts(int a_bits = 6) { return json{{"a_bits", a_bits}, {"a8_layers", "mlp.down_proj"}}; }

linear_layer make_layer(const std::string &name, int64_t n, int64_t k, at::Device dev, bool quantize, int bits = 6, int64_t group = 128) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(42);
    linear_layer l;
    l.name = name;
    l.weight = (at::randn({n, k}, gen) * 0.02).to(at::kHalf).to(dev);
    if (quantize) {
        l.qweight = quantize_weight_rtn(l.weight.to(at::kFloat).cpu(), bits, group, true);
        l.qweight->q = l.qweight->q.to(dev);
        l.qweight->scales = l.qweight->scales.to(dev);
    }
    return l;
}

double nmse(const at::Tensor &a, const at::Tensor &ref) {
    auto d = (a.to(at::kDouble) - ref.to(at::kDouble)).pow(2).sum();
    return (d / ref.to(at::kDouble).pow(2).sum()).item<double>();
}

} // namespace

TEST_SUITE("backends") {

TEST_CASE("CUDA back-ends are registered and refuse CPU, non-fp16 and unsupported weights with reasons") {
#if QBENCH_HAVE_CUDA
    const char *names[] = {"fp16", "cublaslt_w8a8", "cublas_w8a8_legacy", "w6_imma", "flexq_btc", "w6ax"};
    auto q6 = make_layer("layers.0.self_attn.q_proj", 64, 256, at::kCPU, true);
    for (const char *name : names) {
        auto be = backends().get(name).create(w6_opts());
        auto st = be->supports(q6, at::kCPU, at::kHalf);
        CHECK_MESSAGE(st.code == status_code::unsupported_arch, name);
        CHECK(st.reason.find("CUDA") != std::string::npos);
        auto st2 = be->supports(q6, at::Device(at::kCUDA), at::kFloat);
        CHECK_MESSAGE(st2.code == status_code::unsupported_dtype, name);
        CHECK(st2.reason.find("fp16") != std::string::npos);
    }
    const at::Device cuda(at::kCUDA);
    // W6 back-ends: need a symmetric <= 6-bit g128 weight, and K % 128 == 0.
    auto w6 = backends().get("w6_imma").create(w6_opts());
    CHECK(w6->supports(make_layer("a", 64, 256, at::kCPU, false), cuda, at::kHalf).code == status_code::unsupported_option);
    auto w8 = make_layer("b", 64, 256, at::kCPU, true, 8, 128);
    auto st8 = w6->supports(w8, cuda, at::kHalf);
    CHECK(st8.code == status_code::unsupported_option);
    CHECK(st8.reason.find("w8 g128") != std::string::npos);
    auto odd = make_layer("c", 64, 192, at::kCPU, true, 6, 64);
    CHECK(w6->supports(odd, cuda, at::kHalf).code == status_code::unsupported_option); // g64
    CHECK(w6->supports(q6, cuda, at::kHalf).ok());
    // cuBLASLt W8A8: per-channel weights only; a g128 weight is refused with its format.
    auto lt = backends().get("cublaslt_w8a8").create(json::object());
    auto stl = lt->supports(q6, cuda, at::kHalf);
    CHECK(stl.code == status_code::unsupported_option);
    CHECK(stl.reason.find("g128") != std::string::npos);
    CHECK(lt->supports(make_layer("d", 64, 256, at::kCPU, false), cuda, at::kHalf).ok());
    CHECK(lt->supports(make_layer("e", 66, 256, at::kCPU, false), cuda, at::kHalf).code == status_code::unsupported_shape); // n % 4
    // a8_layers selects 8-bit activations by name; 7 bits is refused.
    auto w7 = backends().get("flexq_btc").create(json{{"a_bits", 7}, {"a8_layers", ""}});
    CHECK(w7->supports(q6, cuda, at::kHalf).code == status_code::unsupported_option);
#else
    CHECK(backends().find("w6_imma") == nullptr); // CPU-only build: no CUDA back-ends registered
#endif
}

} // TEST_SUITE

#if QBENCH_HAVE_CUDA
TEST_SUITE("gpu") {

TEST_CASE("every CUDA back-end agrees with torch_ref on a W6 g128 layer (NMSE by activation bits)") {
    c10::InferenceMode guard;
    const at::Device cuda(at::kCUDA);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
    // m = 1, 2: w6_imma and w6ax quantize inside the GEMM on these small layers (w6ax_fuse_act).
    for (int64_t m : {1, 2, 3, 8, 17, 118})
        for (auto [name, n, k] : {std::tuple{"layers.0.self_attn.q_proj", int64_t(200), int64_t(512)},
                                  std::tuple{"layers.0.mlp.down_proj", int64_t(96), int64_t(1152)}}) {
            auto layer = make_layer(name, n, k, cuda, true);
            layer.bias = (at::randn({n}, gen) * 0.1).to(at::kHalf).to(cuda);
            auto x = at::randn({1, m, k}, gen).to(at::kHalf).to(cuda);
            auto ref = backends().get("torch_ref").create(json::object())->bind(layer, at::kHalf)->forward(x).to(at::kFloat);
            const bool a8 = std::string(name).find("down_proj") != std::string::npos;
            // Activation quantization dominates the difference to torch_ref (which keeps x in
            // fp16): per-element error ~ U(+-scale/2), scale = absmax/qmax ~ 2.9 sigma/qmax for a
            // 128-group of Gaussians -> relative NMSE ~ (2.9/qmax)^2/12 = 7e-4 (A6), 4e-5 (A8);
            // thresholds are 4x that.
            const double limit = a8 ? 2e-4 : 3e-3;
            at::Tensor prev;
            for (const char *be_name : {"w6_imma", "flexq_btc", "w6ax"}) {
                auto be = backends().get(be_name).create(w6_opts());
                REQUIRE_MESSAGE(be->supports(layer, cuda, at::kHalf).ok(), be->supports(layer, cuda, at::kHalf).reason);
                auto out = be->bind(layer, at::kHalf)->forward(x).to(at::kFloat);
                REQUIRE(out.sizes() == ref.sizes());
                const double e = nmse(out, ref);
                CHECK_MESSAGE(e < limit, std::string(be_name) << " m=" << m << " " << std::string(name) << ": nmse " << e << " > " << limit);
                CHECK(out.abs().sum().item<double>() > 0);
                // Same integers, same fp32 scaling: the W6 back-ends agree to fp16 rounding.
                if (prev.defined()) CHECK_MESSAGE(at::allclose(out, prev, 4e-3, 1e-3), be_name << " differs from the previous W6 back-end");
                prev = out;
            }
            // fp16 on the dequantized weight: torch_ref's own math through our cuBLAS call.
            auto f16 = backends().get("fp16").create(json::object())->bind(layer, at::kHalf)->forward(x).to(at::kFloat);
            CHECK_MESSAGE(nmse(f16, ref) < 1e-5, "fp16 m=" << m);
        }
}

TEST_CASE("cuBLASLt W8A8 and the legacy call agree with torch_ref on a dense layer") {
    c10::InferenceMode guard;
    const at::Device cuda(at::kCUDA);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(9);
    for (int64_t m : {1, 17, 118}) {
        auto layer = make_layer("layers.1.mlp.up_proj", 256, 512, cuda, false);
        auto x = at::randn({m, 512}, gen).to(at::kHalf).to(cuda);
        auto ref = backends().get("torch_ref").create(json::object())->bind(layer, at::kHalf)->forward(x).to(at::kFloat);
        // Per-token int8 activations and per-channel int8 weights over all of K: ~1e-4 relative NMSE.
        for (const char *be_name : {"cublaslt_w8a8", "cublas_w8a8_legacy"}) {
            auto be = backends().get(be_name).create(json::object());
            REQUIRE(be->supports(layer, cuda, at::kHalf).ok());
            auto out = be->bind(layer, at::kHalf)->forward(x).to(at::kFloat);
            const double e = nmse(out, ref);
            CHECK_MESSAGE(e < 1e-3, be_name << " m=" << m << ": nmse " << e);
        }
    }
}

} // TEST_SUITE
#endif
