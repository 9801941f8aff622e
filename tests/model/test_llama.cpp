// The LLaMA forward pass on synthetic weights: determinism, causality, GQA, RoPE conventions.
#include "model/decode_graph.h"
#include "model/step_kernels.h"
#include "model/llama.h"
#include "quant/primitives.h"
#include "test_models.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

using namespace qb;

namespace {
llama_config small_config(int64_t kv_heads = 2) { return test::llama_config_of(64, 96, 2, 4, kv_heads, 50); }
at::Tensor tokens_for_test(int64_t vocab, int64_t t, uint64_t seed) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    return at::randint(vocab, {2, t}, gen, at::TensorOptions().dtype(at::kLong));
}
// Largest |a - b| over all elements.
double max_diff(const at::Tensor &a, const at::Tensor &b) { return (a - b).abs().max().item<double>(); }

// Activation codes on the CPU, in the model's formulas: a mock of a back-end's activation producer
// and of runtimes that multiply codes, so that the model's routing (which linears share which codes,
// and when it falls back to fp16 input) is checked without a GPU. The codes are the quantization
// primitives' symmetric per-token, per-128-group ones with fp32 scales (src/quant/primitives.h).
quant_spec codes_spec(act_codes_request want) { return quant_spec_of(want.bits, 128, true, scale_format::fp32); }
act_codes quantize_codes(const at::Tensor &y, act_codes_request want) {
    auto t = quantize(y.reshape({-1, y.size(-1)}), codes_spec(want));
    return {want, t.q, t.scales.t().contiguous()}; // scales [M, K/128] -> act_codes' [K/128, M]
}
at::Tensor dequantize_codes(const act_codes &c) {
    quantized_tensor t;
    t.q = c.q, t.scales = c.scales.t(), t.spec = codes_spec(c.format);
    return dequantize(t);
}

struct mock_producer final : activation_producer {
    mutable int norms = 0, silus = 0;
    act_codes rms_norm_codes(const at::Tensor &x, const at::Tensor &gain, double eps, act_codes_request want, at::Tensor *) const override {
        ++norms;
        auto xf = x.to(at::kFloat);
        return quantize_codes((xf * at::rsqrt(xf.pow(2).mean(-1, true) + eps) * gain.to(at::kFloat)).to(x.scalar_type()), want);
    }
    act_codes silu_mul_codes(const at::Tensor &gate, const at::Tensor &up, act_codes_request want, at::Tensor *) const override {
        ++silus;
        return quantize_codes(at::silu(gate) * up, want);
    }
    std::string describe() const override { return "mock producer"; }
};

// y = dequant(codes(x)) W^T, from fp16 input (its own quantizer) or from codes.
struct mock_code_runtime final : linear_runtime {
    at::Tensor w;
    act_codes_request format;
    mutable int from_codes = 0;
    at::Tensor forward(const at::Tensor &x) const override {
        auto out = at::matmul(dequantize_codes(quantize_codes(x, format)), w.t());
        auto sizes = x.sizes().vec();
        sizes.back() = w.size(0);
        return out.view(sizes).to(x.scalar_type());
    }
    act_codes_request codes_wanted(int64_t) const override { return format; }
    at::Tensor forward_codes(const act_codes &c, at::IntArrayRef prefix) const override {
        ++from_codes;
        REQUIRE(c.format == format);
        auto sizes = prefix.vec();
        sizes.push_back(w.size(0));
        return at::matmul(dequantize_codes(c), w.t()).view(sizes);
    }
    std::string describe() const override { return "mock code runtime"; }
};
} // namespace

TEST_SUITE("model") {

TEST_CASE("synthetic weights: the seed decides them, and none are zero") {
    c10::InferenceMode guard;
    auto a = llama_make_synthetic(small_config(), 7, at::kFloat, at::kCPU);
    auto b = llama_make_synthetic(small_config(), 7, at::kFloat, at::kCPU);
    auto c = llama_make_synthetic(small_config(), 8, at::kFloat, at::kCPU);
    CHECK(at::equal(a.layers[1].down_proj.weight, b.layers[1].down_proj.weight));
    CHECK_FALSE(at::equal(a.layers[1].down_proj.weight, c.layers[1].down_proj.weight));
    for (const auto *l : a.linears()) CHECK_MESSAGE((l->weight != 0).all().item<bool>(), l->name);
    // Weights ~ N(0, 1/K): the empirical std of a 96x64 matrix is within 10% of 1/8.
    CHECK(a.layers[0].gate_proj.weight.std().item<double>() == doctest::Approx(0.125).epsilon(0.1));
}

TEST_CASE("linears have stable names in execution order") {
    auto m = llama_make_synthetic(small_config(), 0, at::kFloat, at::kCPU);
    auto ls = m.linears();
    REQUIRE(ls.size() == 14);
    CHECK(ls[0]->name == "layers.0.self_attn.q_proj");
    CHECK(ls[6]->name == "layers.0.mlp.down_proj");
    CHECK(ls[13]->name == "layers.1.mlp.down_proj");
    CHECK(ls[1]->out_features() == 32); // k_proj with 2 of 4 heads: kv_dim = 2 * 16
}

TEST_CASE("forward: shapes, finite values, and causality") {
    c10::InferenceMode guard;
    auto m = llama_make_synthetic(small_config(), 1, at::kFloat, at::kCPU);
    auto tokens = tokens_for_test(50, 12, 3);
    auto logits = m.forward(tokens);
    CHECK(logits.sizes() == at::IntArrayRef({2, 12, 50}));
    CHECK(at::isfinite(logits).all().item<bool>());
    // Changing the last token must not change any earlier position's logits.
    auto changed = tokens.clone();
    changed.index_put_({0, 11}, (tokens.index({0, 11}) + 1) % 50);
    auto logits2 = m.forward(changed);
    CHECK(max_diff(logits.narrow(1, 0, 11), logits2.narrow(1, 0, 11)) == 0.0);
    CHECK(max_diff(logits.narrow(1, 11, 1), logits2.narrow(1, 11, 1)) > 1e-3);
}

TEST_CASE("grouped-query attention equals multi-head attention with repeated K/V heads") {
    c10::InferenceMode guard;
    auto gqa = llama_make_synthetic(small_config(2), 5, at::kFloat, at::kCPU);
    // Build the equivalent MHA model: each KV head's rows repeated for the query heads that share it.
    llama_model mha = gqa;
    mha.config.n_kv_heads = 4;
    const int64_t hd = gqa.config.head_dim();
    for (auto &l : mha.layers) {
        for (auto *p : {&l.k_proj, &l.v_proj}) {
            auto w = p->weight.view({2, hd, 64});
            p->weight = w.repeat_interleave(2, 0).reshape({4 * hd, 64});
        }
    }
    auto tokens = tokens_for_test(50, 9, 4);
    // fp32, same operations up to the head expansion: differences are rounding only.
    CHECK(max_diff(gqa.forward(tokens), mha.forward(tokens)) < 1e-4);
}

TEST_CASE("interleaved RoPE equals half-split RoPE after permuting q/k rows") {
    c10::InferenceMode guard;
    auto cfg = small_config(4);
    cfg.rope = rope_style::interleaved;
    auto inter = llama_make_synthetic(cfg, 9, at::kFloat, at::kCPU);
    // The permutation llama.cpp/HF conversion applies: within each head, rows (0,1),(2,3),...
    // (interleaved pairs) become rows (i, i + d/2) (half-split pairs).
    llama_model half = inter;
    half.config.rope = rope_style::half_split;
    const int64_t hd = cfg.head_dim();
    auto perm = at::cat({at::arange(0, hd, 2), at::arange(1, hd, 2)}); // new row j <- old row perm[j]
    for (auto &l : half.layers)
        for (auto *p : {&l.q_proj, &l.k_proj}) {
            auto w = p->weight.view({-1, hd, cfg.dim});
            p->weight = w.index_select(1, perm).reshape({-1, cfg.dim});
        }
    auto tokens = tokens_for_test(50, 10, 2);
    CHECK(max_diff(inter.forward(tokens), half.forward(tokens)) < 1e-4);
}

TEST_CASE("lower precision follows the fp32 model closely") {
    c10::InferenceMode guard;
    auto f32 = llama_make_synthetic(small_config(), 2, at::kFloat, at::kCPU);
    auto bf16 = llama_make_synthetic(small_config(), 2, at::kBFloat16, at::kCPU);
    auto tokens = tokens_for_test(50, 8, 5);
    auto a = f32.forward(tokens), b = bf16.forward(tokens);
    CHECK((b.scalar_type() == at::kFloat)); // logits always come back in fp32
    // bf16 keeps 8 bits of mantissa (relative rounding 2^-9 per op); over two layers the logits
    // (scale ~1-5) move by a few percent of their spread, never more than 0.5.
    CHECK(max_diff(a, b) < 0.5);
    CHECK(max_diff(a, b) > 0.0);
}

TEST_CASE("KV-cache decoding reproduces the full prefill, token by token and in chunks") {
    c10::InferenceMode guard;
    auto m = llama_make_synthetic(small_config(2), 11, at::kFloat, at::kCPU);
    auto tokens = tokens_for_test(50, 12, 6); // [2, 12]
    auto full = m.forward(tokens);            // [2, 12, 50]

    auto cache = m.make_cache(2, 16);
    auto prompt = m.forward(tokens.narrow(1, 0, 5), &cache);
    CHECK(cache.length == 5);
    CHECK(max_diff(prompt, full.narrow(1, 0, 5)) < 1e-5);
    for (int64_t i = 5; i < 12; ++i) {
        auto step = m.forward(tokens.narrow(1, i, 1), &cache); // one new token sees all cached keys
        CHECK_MESSAGE(max_diff(step, full.narrow(1, i, 1)) < 1e-4, "position " << i);
    }
    CHECK(cache.length == 12);

    // A chunk of several tokens after a cached prefix uses the explicit offset mask.
    auto cache2 = m.make_cache(2, 12);
    m.forward(tokens.narrow(1, 0, 4), &cache2);
    auto chunk = m.forward(tokens.narrow(1, 4, 8), &cache2);
    CHECK(max_diff(chunk, full.narrow(1, 4, 8)) < 1e-4);
    CHECK_THROWS_WITH(m.forward(tokens.narrow(1, 0, 1), &cache2), doctest::Contains("kv cache full"));
}

TEST_CASE("forward_step (shapes fixed at every position, as a CUDA graph needs) equals KV-cache decoding") {
    c10::InferenceMode guard;
    auto m = llama_make_synthetic(small_config(2), 11, at::kFloat, at::kCPU); // GQA: 4 heads, 2 kv heads
    auto tokens = tokens_for_test(50, 12, 6);
    auto eager = m.make_cache(2, 16), fixed = m.make_cache(2, 16);
    m.forward(tokens.narrow(1, 0, 5), &eager);
    m.forward(tokens.narrow(1, 0, 5), &fixed);
    // Positions past the one being decoded hold what an earlier sequence left (a graph reuses its
    // cache): finite garbage the mask must hide.
    for (auto *kv : {&fixed.k, &fixed.v})
        for (auto &t : *kv) t.narrow(2, 5, 11).fill_(1e3);
    auto pos = at::zeros({1}, at::TensorOptions().dtype(at::kLong));
    for (int64_t i = 5; i < 12; ++i) {
        auto want = m.forward(tokens.narrow(1, i, 1), &eager);
        pos.fill_(i);
        auto got = m.forward_step(tokens.narrow(1, i, 1), pos, fixed);
        CHECK(fixed.length == 5); // forward_step leaves the length to its caller
        // Masked positions get exactly zero weight; what remains is the attention kernel's
        // summation order over 16 instead of i + 1 keys in fp32 (logits of magnitude ~1-5).
        CHECK_MESSAGE(max_diff(got, want) < 1e-5, "position " << i);
        CHECK(at::equal(fixed.k[0].narrow(2, i, 1), eager.k[0].narrow(2, i, 1))); // the new key went to position i
    }
    CHECK_THROWS_WITH(m.forward_step(tokens.narrow(1, 0, 2), pos, fixed), doctest::Contains("[batch, 1]"));
    // A graph of the step needs CUDA; on a CPU model it says so before touching the CUDA runtime.
    CHECK_THROWS_WITH(decode_step_graph(m, fixed), doctest::Contains(decode_graphs_available() ? "the model is on cpu" : "without CUDA"));
    CHECK_THROWS_WITH(m.forward_step(tokens.narrow(1, 0, 1), pos.to(at::kInt), fixed), doctest::Contains("pos must be one int64"));
}

TEST_CASE("forward_step's fused kernels: refused on a CPU model with the reason, ATen operations instead") {
    c10::InferenceMode guard;
    auto m = llama_make_synthetic(small_config(2), 11, at::kFloat, at::kCPU);
    const auto why = fused_step_attention_unsupported(m);
    CHECK(why == (decode_graphs_available() ? "the model is on cpu, the kernels run on CUDA" : "qbench was built without CUDA"));
    CHECK(fused_step_norms_unsupported(m) == why);
    CHECK(step_kernels_description(m, true).rfind("aten: ", 0) == 0);
    CHECK(step_kernels_description(m, true).find(why) != std::string::npos);
    CHECK(step_kernels_description(m, false).find("not asked for") != std::string::npos);
    auto cache = m.make_cache(2, 8);
    const auto tokens = tokens_for_test(50, 8, 6);
    m.forward(tokens.narrow(1, 0, 3), &cache);
    const auto pos = at::full({1}, 3, at::TensorOptions().dtype(at::kLong));
    // Asked for or not, a CPU model's step is the ATen one: the same bits.
    auto copy = cache;
    for (size_t i = 0; i < cache.k.size(); ++i) copy.k[i] = cache.k[i].clone(), copy.v[i] = cache.v[i].clone();
    CHECK(at::equal(m.forward_step(tokens.narrow(1, 3, 1), pos, cache, true), m.forward_step(tokens.narrow(1, 3, 1), pos, copy, false)));
    const std::string refusal = "fused step attention: " + why;
    CHECK_THROWS_WITH(fused_step_attention(m, at::zeros({2, 1, 64}), at::zeros({2, 1, 32}), at::zeros({2, 1, 32}), pos, cache, 0),
                      doctest::Contains(refusal.c_str()));
    CHECK_THROWS_WITH(fused_rms_norm(m, at::zeros({2, 1, 64}), at::ones({64})), doctest::Contains(("fused RMSNorm: " + why).c_str()));
}

TEST_CASE("activation producer: linears reading one norm share its codes, down reads SiLU x up's, and the output is unchanged") {
    c10::InferenceMode guard;
    auto model = llama_make_synthetic(test::llama_config_of(256, 384, 2, 4, 2, 50), 3, at::kFloat, at::kCPU);
    std::vector<std::shared_ptr<mock_code_runtime>> rts;
    for (auto *l : model.linears()) {
        auto rt = std::make_shared<mock_code_runtime>();
        rt->w = l->weight;
        rt->format = {l->name.find("down_proj") != std::string::npos ? 8 : 6, 1};
        l->runtime = rt;
        rts.push_back(rt);
    }
    const auto tokens = tokens_for_test(50, 5, 4);
    const auto without = model.forward(tokens);
    for (const auto &rt : rts) CHECK(rt->from_codes == 0);
    auto producer = std::make_shared<mock_producer>();
    model.producer = producer;
    const auto with = model.forward(tokens);
    // The same codes either way (the mock producer computes the model's own RMSNorm and SiLU x up).
    CHECK(at::equal(with, without));
    CHECK(producer->norms == 2 * 2); // attention and MLP input of each layer
    CHECK(producer->silus == 2);
    for (size_t i = 0; i < rts.size(); ++i) {
        const bool o_proj = model.linears()[i]->name.find("o_proj") != std::string::npos;
        CHECK_MESSAGE(rts[i]->from_codes == (o_proj ? 0 : 1), model.linears()[i]->name); // attention feeds o_proj
    }
    // A reader that wants other codes (v_proj at A8) sends its group back to fp16 input.
    rts[2]->format = {8, 1};
    producer->norms = 0;
    for (const auto &rt : rts) rt->from_codes = 0;
    const auto mixed = model.forward(tokens);
    CHECK(producer->norms == 2 + 1); // layer 0's MLP norm, layer 1's two
    CHECK(rts[0]->from_codes == 0);
    CHECK(rts[7]->from_codes == 1);
    CHECK(mixed.isfinite().all().item<bool>());
}

TEST_CASE("LLaMA-3.1 RoPE scaling: short wavelengths kept, long ones divided by the factor, blend between") {
    llama_config c = test::llama_config_of(4096, 14336, 1, 32, 8, 128);
    c.rope_theta = 500000;
    const auto plain = rope_inverse_frequencies(c);
    c.rope_scaling_factor = 8;
    c.rope_low_freq_factor = 1;
    c.rope_high_freq_factor = 4;
    c.rope_original_max_seq_len = 8192;
    const auto scaled = rope_inverse_frequencies(c);
    REQUIRE(scaled.size() == 64);
    CHECK(scaled[0] == plain[0]);             // wavelength 2*pi < 8192/4: unchanged
    CHECK(scaled[63] == doctest::Approx(plain[63] / 8)); // wavelength > 8192: slowed by 8
    // In between, wavelength w in [2048, 8192]: smooth = (8192/w - 1)/3 blends f/8 and f.
    for (size_t i = 0; i < scaled.size(); ++i) {
        const double w = 2 * M_PI / plain[i];
        if (w < 2048 || w > 8192) continue;
        const double smooth = (8192 / w - 1) / 3;
        CHECK(scaled[i] == doctest::Approx((1 - smooth) * plain[i] / 8 + smooth * plain[i]));
        CHECK(scaled[i] < plain[i]);
        CHECK(scaled[i] > plain[i] / 8);
    }
}

TEST_CASE("model config json: every field round-trips, and the text (hashed into model identities) is fixed") {
    llama_config c;
    c.name = "cfg";
    c.dim = 64, c.hidden_dim = 96, c.n_layers = 3, c.n_heads = 4, c.n_kv_heads = 2, c.vocab_size = 50, c.max_seq_len = 77;
    c.norm_eps = 1e-6, c.rope_theta = 5e5, c.rope = rope_style::interleaved, c.tied_embeddings = true, c.qkv_bias = true;
    c.rope_scaling_factor = 8, c.rope_low_freq_factor = 1.5, c.rope_high_freq_factor = 3.5, c.rope_original_max_seq_len = 4096;
    const json j = c.to_json();
    // The text before the field table existed (same keys, values and order): identities unchanged.
    CHECK(j.dump() == R"({"dim":64,"hidden_dim":96,"max_seq_len":77,"n_heads":4,"n_kv_heads":2,"n_layers":3,"name":"cfg",)"
                      R"("norm_eps":1e-06,"qkv_bias":true,"rope_high_freq_factor":3.5,"rope_low_freq_factor":1.5,)"
                      R"("rope_original_max_seq_len":4096,"rope_scaling_factor":8.0,"rope_style":"interleaved","rope_theta":500000.0,)"
                      R"("tied_embeddings":true,"vocab_size":50})");
    CHECK(llama_config_from_json(j).to_json() == j);
    CHECK(llama_config_from_json(small_config().to_json()).to_json() == small_config().to_json());
    json missing = j;
    missing.erase("rope_theta");
    CHECK_THROWS(llama_config_from_json(missing));
}

TEST_CASE("dtype names") {
    CHECK((dtype_from_name("bf16") == at::kBFloat16));
    CHECK(std::string(dtype_name(at::kHalf)) == "fp16");
    CHECK_THROWS(dtype_from_name("fp8"));
}

} // TEST_SUITE
