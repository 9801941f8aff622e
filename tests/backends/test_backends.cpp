// Kernel back-end adapters (src/backends/gpu_backends.cpp).
//   suite backends (cpu, CI): supports() refuses what cannot run, with the values in the reason
//     (CPU device, dtypes, weight formats, K % 128), before any CUDA call;
//   suite gpu (H100): every CUDA back-end against torch_ref on the same layer (NMSE per
//     activation width, thresholds below), and the W6 back-ends against each other (same integers:
//     equal to fp16 rounding); the W6 activation producer (RMSNorm / SiLU x up writing the codes)
//     against the same runtime fed the producer's own fp16 output (bit-identical), and a W6 model
//     with the producer against one without; a decode step captured as a CUDA graph against the same
//     step run eagerly (equal) and against KV-cache decoding, with each back-end bound and with the
//     fused decode attention kernel and ATen's (layer 0's cache bit-identical either way); q, k, v as
//     one GEMM against three, on every back-end; the SiLU x up kernel on a fused gate_up's strided
//     slices against ATen's silu(gate) * up (equal: prefill takes the kernel there).
#include "backends/backend.h"
#include "config.h"
#include "model/decode_graph.h"
#include "model/llama.h"
#include "model/step_kernels.h"
#include "quant/quantizer.h"
#include "test_models.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <doctest/doctest.h>

#include <string>
#include <vector>

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

// torch_ref that also binds q, k, v / gate, up as one layer (the concatenation): the fusion's model
// and harness side without a GPU.
struct fusing_torch_ref final : backend {
    std::unique_ptr<backend> ref = backends().get("torch_ref").create(json::object());
    mutable int fused_binds = 0;
    status supports(const linear_layer &l, at::Device d, at::ScalarType t) const override { return ref->supports(l, d, t); }
    std::shared_ptr<const linear_runtime> bind(const linear_layer &l, at::ScalarType t) const override { return ref->bind(l, t); }
    std::shared_ptr<const linear_runtime> bind_fused(std::span<const linear_layer *const> parts, at::ScalarType t, std::string &why_not) const override {
        auto layer = concatenated_linear(parts, "fused", why_not);
        if (!why_not.empty()) return nullptr;
        ++fused_binds;
        return ref->bind(layer, t);
    }
};

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

TEST_CASE("fused projections: q, k, v and gate, up as one GEMM each give the model's logits; what cannot fuse says why") {
    c10::InferenceMode guard;
    // GQA (k, v narrower than q), biases on q, k, v, RTN W4 g32 weights with A8 activations: the
    // concatenation must carry every part's weight, scales, bias and activation setting.
    auto cfg = qb::test::llama_config_of(64, 96, 2, 4, 2, 50);
    cfg.qkv_bias = true;
    auto base = llama_make_synthetic(cfg, 7, at::kFloat, at::kCPU);
    for (auto *l : base.linears()) {
        l->qweight = quantize_weight_rtn(l->weight, 4, 32, true);
        l->act_quant = {8, 0};
    }
    const auto ref_be = backends().get("torch_ref").create(json::object());
    auto per_layer = base, fused = base;
    for (auto *l : per_layer.linears()) l->runtime = ref_be->bind(*l, at::kFloat);
    fusing_torch_ref fuse_be;
    const std::string summary = fuse_projections(fused, fuse_be);
    CHECK(summary == "q, k, v: one GEMM in every layer; gate, up: one GEMM in every layer");
    CHECK(fuse_be.fused_binds == 4);
    for (const auto &l : fused.layers) {
        CHECK(l.qkv);
        CHECK(l.gate_up);
        CHECK(l.k_proj.runtime->describe().rfind("outputs 64..95 of ", 0) == 0);
        CHECK(l.o_proj.runtime == nullptr); // left for the caller
    }
    for (auto *l : fused.linears())
        if (!l->runtime) l->runtime = ref_be->bind(*l, at::kFloat);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
    const auto tokens = at::randint(50, {2, 7}, gen, at::TensorOptions().dtype(at::kLong));
    // Each output is the same dot product over K = 64 or 96 fp32 terms; only the matmul's blocking for
    // the wider shape may order the sums differently: a few 2^-24 relative to sum |terms| (~ the
    // output's own scale here) per layer. 1e-10 of the logits' energy is far above that and far below
    // any mixed-up column (one wrong column of q would be ~1e-2).
    const auto want = per_layer.forward(tokens), got = fused.forward(tokens);
    const double e = nmse(got, want);
    MESSAGE("fused vs per-layer logits NMSE " << e);
    CHECK(e < 1e-10);
    // Prefill then decoding steps (the KV-cache path reads k and v as views of the fused output).
    auto cache_a = per_layer.make_cache(2, 16), cache_b = fused.make_cache(2, 16);
    per_layer.forward(tokens.narrow(1, 0, 5), &cache_a);
    fused.forward(tokens.narrow(1, 0, 5), &cache_b);
    auto pos = at::full({1}, 5, at::TensorOptions().dtype(at::kLong));
    CHECK(nmse(fused.forward_step(tokens.narrow(1, 5, 1), pos, cache_b, false), per_layer.forward_step(tokens.narrow(1, 5, 1), pos, cache_a, false)) < 1e-10);
    // A part's runtime alone gives its slice (what other callers of linear_layer::forward see).
    const auto x = at::randn({3, 64}, gen);
    CHECK(nmse(fused.layers[1].v_proj.forward(x), per_layer.layers[1].v_proj.forward(x)) < 1e-10);

    // What cannot be fused is named with the layers and values.
    auto mixed = base;
    mixed.layers[0].v_proj.act_quant = {6, 128};
    std::string why;
    const linear_layer *parts[] = {&mixed.layers[0].q_proj, &mixed.layers[0].k_proj, &mixed.layers[0].v_proj};
    concatenated_linear(parts, "x", why);
    CHECK(why == "layers.0.self_attn.q_proj and layers.0.self_attn.v_proj differ in activation quantization (a8 per-token vs a6 g128)");
    fusing_torch_ref fb2;
    const std::string partial = fuse_projections(mixed, fb2);
    CHECK(partial.rfind("q, k, v: one GEMM in 1 of 2 layers (layers.0.self_attn.q_proj: layers.0.self_attn.q_proj and layers.0.self_attn.v_proj differ", 0) == 0);
    CHECK(!mixed.layers[0].qkv);
    CHECK(mixed.layers[0].q_proj.runtime == nullptr);
    auto plain = base;
    CHECK(fuse_projections(plain, *ref_be) ==
          "q, k, v: one GEMM in 0 of 2 layers (layers.0.self_attn.q_proj: the back-end binds one layer at a time); gate, up: one GEMM in 0 of 2 "
          "layers (layers.0.mlp.gate_proj: the back-end binds one layer at a time)");
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

TEST_CASE("W6 activation producer: codes from RMSNorm / SiLU x up give the bits of the GEMM on their y; a model with it agrees") {
    c10::InferenceMode guard;
    const at::Device cuda(at::kCUDA);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(11);
    for (const char *be_name : {"w6_imma", "w6ax"}) {
        auto be = backends().get(be_name).create(w6_opts());
        const auto producer = be->producer();
        REQUIRE(producer);
        auto qkv = make_layer("layers.0.self_attn.q_proj", 200, 512, cuda, true);
        auto down = make_layer("layers.0.mlp.down_proj", 96, 512, cuda, true);
        const auto rq = be->bind(qkv, at::kHalf), rd = be->bind(down, at::kHalf);
        // m = 1, 2: w6ax quantizes inside the GEMM from fp16 (same codes); 200: the wgmma path's order.
        for (int64_t m : {1, 2, 5, 17, 200}) {
            const auto want_q = rq->codes_wanted(m), want_d = rd->codes_wanted(m);
            REQUIRE(want_q.bits == 6);
            REQUIRE(want_d.bits == 8);
            auto x = (at::randn({1, m, 512}, gen) * 3).to(at::kHalf).to(cuda);
            auto gain = (1 + 0.1 * at::randn({512}, gen)).to(at::kHalf).to(cuda);
            at::Tensor y;
            const auto codes = producer->rms_norm_codes(x, gain, 1e-5, want_q, &y);
            const auto from_codes = rq->forward_codes(codes, {1, m});
            CHECK_MESSAGE(at::equal(from_codes, rq->forward(y)), be_name << " m=" << m << ": RMSNorm codes -> GEMM differs from the GEMM on its y");
            // y is the model's formula in fp32 up to one fp16 ulp (2^-10 relative at most).
            auto xf = x.to(at::kFloat);
            auto ref = (xf * at::rsqrt(xf.pow(2).mean(-1, true) + 1e-5) * gain.to(at::kFloat)).to(at::kHalf).to(at::kFloat);
            CHECK((y.to(at::kFloat) - ref).abs().le(ref.abs() * (1.0 / 1024) + 1e-7).all().item<bool>());
            auto gate = (at::randn({1, m, 512}, gen) * 4).to(at::kHalf).to(cuda), up = (at::randn({1, m, 512}, gen) * 2).to(at::kHalf).to(cuda);
            const auto scodes = producer->silu_mul_codes(gate, up, want_d, &y);
            CHECK_MESSAGE(at::equal(rd->forward_codes(scodes, {1, m}), rd->forward(y)), be_name << " m=" << m << ": SiLU x up codes -> GEMM differs");
            auto sref = (at::silu(gate) * up).to(at::kFloat);
            CHECK((y.to(at::kFloat) - sref).abs().le(sref.abs() * (1.0 / 512) + 1e-7).all().item<bool>());
            // Codes for another format are refused with the values.
            CHECK_THROWS_WITH_AS(rd->forward_codes(codes, {1, m}), doctest::Contains("do not match"), std::exception);
        }
    }
    // A small W6 model (dims multiples of 128, GQA): logits with the producer against without.
    auto cfg = qb::test::llama_config_of(256, 512, 2, 4, 2, 96);
    auto model = llama_make_synthetic(cfg, 5, at::kHalf, cuda);
    auto be = backends().get("w6ax").create(w6_opts());
    for (auto *l : model.linears()) {
        l->qweight = quantize_weight_rtn(l->weight.to(at::kFloat).cpu(), 6, 128, true);
        l->runtime = be->bind(*l, at::kHalf);
    }
    auto tokens = at::randint(0, 96, {2, 9}, gen).to(cuda);
    auto run = [&](bool with_producer) {
        model.producer = with_producer ? be->producer() : nullptr;
        auto cache = model.make_cache(2, 16);
        auto prefill = model.forward(tokens.narrow(1, 0, 8), &cache);
        auto step = model.forward(tokens.narrow(1, 8, 1), &cache);
        return at::cat({prefill, step}, 1);
    };
    const auto without = run(false), with = run(true);
    // The two differ only where an RMSNorm output is one ulp apart and that moves a code (rare:
    // ~1e-5 of values); A6 quantization itself is ~7e-4 relative NMSE per layer (above), so 1e-4
    // is far above the first and well below the second.
    const double e = nmse(with, without);
    MESSAGE("W6 model, producer vs none: logits NMSE " << e);
    CHECK(e < 1e-4);
    CHECK(with.isfinite().all().item<bool>());
}

TEST_CASE("decode graph: each replay equals the same step run eagerly, and follows KV-cache decoding") {
    c10::InferenceMode guard;
    const at::Device cuda(at::kCUDA);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(13);
    const auto cfg = qb::test::llama_config_of(256, 512, 2, 4, 2, 96); // GQA, dims multiples of 128
    const auto tokens = at::randint(0, 96, {2, 14}, gen).to(cuda);
    // "" = the dense fp16 model (ATen linears); the W6 back-ends run their PDL launches and w6ax its
    // activation producer inside the graph. Each with the fused step kernels (attention: head_dim 64,
    // groups of 2; RMSNorm and SiLU x up: dims multiples of 128; they run here) and with ATen's.
    // The unquantized model's logits while decoding the same tokens (ATen, KV cache): what each
    // quantized model's own error is measured against.
    std::vector<at::Tensor> dense_logits(14);
    {
        auto dense = llama_make_synthetic(cfg, 5, at::kHalf, cuda);
        auto cache = dense.make_cache(2, 20);
        dense.forward(tokens.narrow(1, 0, 6), &cache);
        for (int64_t i = 6; i < 14; ++i) dense_logits[i] = dense.forward(tokens.narrow(1, i, 1), &cache);
    }
    for (const char *be_name : {"", "fp16", "cublaslt_w8a8", "w6ax", "flexq_btc"})
        for (const bool fuse : {true, false}) {
            const std::string name = be_name, attention = fuse ? "fused step kernels" : "ATen step kernels";
            CAPTURE(name); // std::string: doctest prints a const char * as a pointer
            CAPTURE(attention);
            auto model = llama_make_synthetic(cfg, 5, at::kHalf, cuda);
            if (!name.empty()) {
                auto be = backends().get(name).create(name == "w6ax" || name == "flexq_btc" ? w6_opts() : json::object());
                for (auto *l : model.linears())
                    if (name == "w6ax" || name == "flexq_btc") l->qweight = quantize_weight_rtn(l->weight.to(at::kFloat).cpu(), 6, 128, true);
                // With the fused step kernels, q, k, v and gate, up as one GEMM each (as the harness
                // binds them: attention and SiLU x up read their slices in place); with ATen's, one
                // GEMM per projection: both of the forward pass's routes.
                if (fuse) CHECK(fuse_projections(model, *be) == "q, k, v: one GEMM in every layer; gate, up: one GEMM in every layer");
                for (auto *l : model.linears())
                    if (!l->runtime) l->runtime = be->bind(*l, at::kHalf);
                model.producer = be->producer();
            }
            REQUIRE(fused_step_attention_unsupported(model).empty());
            REQUIRE(fused_step_norms_unsupported(model).empty());
            CHECK(step_kernels_description(model, fuse).rfind(fuse ? "fused:" : "aten:", 0) == 0);
            auto by_graph = model.make_cache(2, 20), by_step = model.make_cache(2, 20), by_forward = model.make_cache(2, 20);
            for (auto *c : {&by_graph, &by_step, &by_forward}) model.forward(tokens.narrow(1, 0, 6), c);
            decode_step_graph graph(model, by_graph, fuse);
            MESSAGE((name.empty() ? std::string("dense") : name) << ", " << attention << ": one step is " << graph.kernels()
                                                     << " kernels of " << graph.nodes() << " graph nodes");
            CHECK(graph.kernels() >= 2 * 7); // at least the 7 linears of each layer
            auto pos = at::zeros({1}, tokens.options());
            for (int64_t i = 6; i < 14; ++i) {
                const auto tok = tokens.narrow(1, i, 1);
                const auto replayed = graph.step(tok).clone();
                pos.fill_(i);
                const auto stepped = model.forward_step(tok, pos, by_step, fuse);
                const auto decoded = model.forward(tok, &by_forward);
                CHECK(by_graph.length == i + 1);
                // The graph launches the very kernels of forward_step with the same arguments (the
                // fused kernel's sums have a fixed order: bit-identical run to run).
                CHECK_MESSAGE(at::equal(replayed, stepped), "position " << i);
                // forward() decodes with ATen attention over i + 1 keys. ATen's masked attention in
                // forward_step spans all 20 keys (the masked ones weigh exactly 0), the fused kernel
                // sums in fp32 in its own order: either moves attention outputs by an fp16 ulp (4.9e-4
                // relative) here and there, which through 2 layers is ~1e-7 of the logits' energy
                // (unquantized models: 1e-6; the fused RMSNorm sums its mean in another order too, one
                // ulp where a value lies within ~1e-6 of a rounding boundary). A quantized model
                // re-quantizes what these kernels write (o_proj's input, and the norms' where no
                // producer writes codes): where an
                // ulp moves a group's absmax or a code across a rounding boundary, the codes differ,
                // and from there every later activation. With ATen's attention on both sides few
                // ulps move, and the W6 models stay within 1e-4 (far below A6 quantization's own
                // ~7e-4 per layer, the test above); the fused kernel, a different summation, moves
                // more of them (measured on the H100: cuBLASLt W8A8 up to 1.8e-4, W6 up to 8.8e-4), so
                // the bound there is what the difference must stay below to be noise: the model's
                // own quantization error, its distance from the unquantized model at that position.
                const double e = nmse(replayed, decoded);
                const bool quantized = name == "cublaslt_w8a8" || name == "w6ax" || name == "flexq_btc";
                if (quantized && fuse) {
                    const double own = nmse(decoded, dense_logits[i]);
                    MESSAGE(name << " position " << i << ": fused vs ATen decoding NMSE " << e << ", quantization error " << own);
                    CHECK_MESSAGE(e < own, "position " << i << ": NMSE " << e << " >= quantization error " << own);
                } else {
                    CHECK_MESSAGE(e < (quantized && name != "cublaslt_w8a8" ? 1e-4 : 1e-6), "position " << i << ": NMSE " << e);
                }
            }
            // Layer 0's keys and values depend on the tokens and its RMSNorm only: with ATen's norm
            // on both sides they are the same bits whichever attention wrote them (the fused
            // kernel's RoPE is the ATen formula, rounded the same); the fused norm moves an fp16 ulp
            // here and there.
            if (!fuse || model.producer) {
                CHECK(at::equal(by_graph.k[0].narrow(2, 0, 14), by_forward.k[0].narrow(2, 0, 14)));
                CHECK(at::equal(by_graph.v[0].narrow(2, 0, 14), by_forward.v[0].narrow(2, 0, 14)));
            }
            CHECK(by_graph.length == 14);
            CHECK_THROWS_WITH_AS(graph.step(tokens.narrow(1, 0, 2)), doctest::Contains("do not match"), std::exception);
        }
}

TEST_CASE("fused projections on every CUDA back-end: q, k, v as one GEMM give each projection's own outputs") {
    c10::InferenceMode guard;
    const at::Device cuda(at::kCUDA);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(17);
    for (const char *be_name : {"fp16", "cublaslt_w8a8", "cublas_w8a8_legacy", "w6_imma", "w6ax", "flexq_btc"}) {
        const std::string name = be_name;
        CAPTURE(name);
        const bool w6 = name.rfind("w6", 0) == 0 || name == "flexq_btc";
        auto be = backends().get(name).create(w6 ? w6_opts() : json::object());
        // GQA widths; make_layer draws every weight from one seed, so each part is scaled apart to
        // make a column mix-up visible.
        auto q = make_layer("layers.0.self_attn.q_proj", 256, 512, cuda, w6), k = make_layer("layers.0.self_attn.k_proj", 128, 512, cuda, w6),
             v = make_layer("layers.0.self_attn.v_proj", 128, 512, cuda, w6);
        k.weight = k.weight * 2, v.weight = v.weight * -3;
        if (w6)
            for (auto *l : {&k, &v}) {
                l->qweight = quantize_weight_rtn(l->weight.to(at::kFloat).cpu(), 6, 128, true);
                l->qweight->q = l->qweight->q.to(cuda), l->qweight->scales = l->qweight->scales.to(cuda);
            }
        const linear_layer *parts[] = {&q, &k, &v};
        std::string why;
        const auto fused = be->bind_fused(parts, at::kHalf, why);
        REQUIRE_MESSAGE(fused, why);
        const auto rq = be->bind(q, at::kHalf), rk = be->bind(k, at::kHalf), rv = be->bind(v, at::kHalf);
        for (int64_t m : {1, 5, 17, 200}) {
            CAPTURE(m);
            auto x = at::randn({1, m, 512}, gen).to(at::kHalf).to(cuda);
            const auto y = fused->forward(x);
            REQUIRE(y.sizes() == at::IntArrayRef({1, m, 512}));
            int64_t offset = 0;
            for (const auto &rt : {rq, rk, rv}) {
                const auto sep = rt->forward(x).to(at::kFloat);
                const auto part = y.narrow(-1, offset, sep.size(-1)).to(at::kFloat);
                offset += sep.size(-1);
                // The same integer (or fp16) dot products and scales; the kernel's choices for the
                // wider shape (split of K, algorithm) may sum its fp32 partials in another order: a
                // few 2^-24 relative to the partials' magnitudes (<= 2^-18 of the largest output
                // here), then one fp16 rounding, which two nearly equal values may take to adjacent
                // fp16 numbers (2^-10 relative).
                const auto bound = sep.abs() * (1.0 / 1024) + sep.abs().max() * (1.0 / (1 << 18));
                const auto over = ((part - sep).abs() > bound).sum().item<int64_t>();
                CHECK_MESSAGE(over == 0, over << " outputs beyond the bound; equal bits: " << at::equal(part, sep));
            }
        }
    }
}

TEST_CASE("SiLU x up on a fused gate_up's strided slices: the kernel gives ATen's bits (what prefill runs)") {
    c10::InferenceMode guard;
    const at::Device cuda(at::kCUDA);
    auto gen = at::make_generator<at::CPUGeneratorImpl>(19);
    const auto model = llama_make_synthetic(qb::test::llama_config_of(256, 512, 2, 4, 2, 96), 5, at::kHalf, cuda);
    for (int64_t m : {1, 3, 200}) {
        CAPTURE(m);
        // gate spans silu's two tails and its bend (|x| up to ~40), a few rows carry fp16 extremes
        // (exp overflows to inf: -x / inf = -0), up is signed and wide.
        auto y = at::randn({m, 1024}, gen) * 8;
        y.index_put_({0, at::indexing::Slice(0, 8)}, at::tensor({0.f, -0.f, 65504.f, -65504.f, 88.f, -88.f, 1e-7f, -1e-7f}));
        y = y.to(at::kHalf).to(cuda);
        const auto gate = y.narrow(1, 0, 512), up = y.narrow(1, 512, 512);
        REQUIRE(gate.stride(0) == 1024);
        const auto aten = at::silu(gate) * up, kernel = fused_silu_mul(model, gate, up);
        CHECK(kernel.is_contiguous());
        CHECK_MESSAGE(at::equal(kernel, aten), (kernel.to(at::kFloat) != aten.to(at::kFloat)).sum().item<int64_t>() << " of " << aten.numel() << " differ");
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
