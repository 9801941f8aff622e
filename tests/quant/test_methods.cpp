// Methods on toy synthetic models: flexq (paper preset; sensitivity with a planted sensitive layer),
// group_int6, rtn WxAy, smoothquant (exactness of the smoothing, benefit on an outlier channel),
// calibration windows, option resolution, the sensitivity report files and the GPU back-ends'
// refusal of activation settings they cannot run.
#include "backends/backend.h"
#include "config.h"
#include "core/error.h"
#include "quant/calibration.h"
#include "quant/methods.h"
#include "quant/plot_png.h"
#include "test_models.h"
#include "test_util.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <doctest/doctest.h>

#include <fstream>
#include <iterator>

using namespace qb;

namespace {

// dim 128, hidden 256 (K of down_proj 256), 3 layers, GQA 4/2, vocab 96: a forward of 4 x 64
// tokens takes milliseconds on a CPU.
llama_model toy(uint64_t seed = 1) {
    return llama_make_synthetic(test::llama_config_of(128, 256, 3, 4, 2, 96, 128), seed, at::kFloat, at::kCPU);
}

at::Tensor tokens_for(const llama_model &m, int64_t windows, int64_t len, uint64_t seed) {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
    return at::randint(m.config.vocab_size, {windows, len}, gen, at::TensorOptions().dtype(at::kLong));
}

// Makes channel `c` of down_proj's input in decoder layer `li` `factor` times larger without
// changing the function: up_proj row c * factor, down_proj column c / factor.
void plant_down_proj_outlier(llama_model &m, size_t li, int64_t c, double factor) {
    auto &d = m.layers[li];
    d.up_proj.weight = d.up_proj.weight.clone();
    d.up_proj.weight[c].mul_(factor);
    d.down_proj.weight = d.down_proj.weight.clone();
    d.down_proj.weight.select(1, c).div_(factor);
}

std::string read_all(const std::filesystem::path &p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

} // namespace

TEST_SUITE("quant") {

TEST_CASE("options: defaults filled from the registry, unknown keys named") {
    auto o = quantizer_options_resolved("flexq", json{{"selection", "paper"}});
    CHECK(o["selection"] == "paper");
    CHECK(o["sensitivity_threshold"] == 0.05);
    CHECK(o["group_size"] == 128);
    CHECK(o["calib_windows"] == 8);
    CHECK_THROWS_WITH_AS(quantizer_options_resolved("flexq", json{{"treshold", 0.1}}),
                         doctest::Contains("quantizer flexq: unknown option 'treshold'"), qb::error);
    CHECK_THROWS_WITH_AS(quantizer_options_resolved("rtn", json{{"a_bits", 1}}), doctest::Contains("a_bits must be 0"), qb::error);
}

TEST_CASE("flexq paper preset: W6 g128 fp16 scales everywhere, A8 on every mlp.down_proj, A6 g128 elsewhere") {
    c10::InferenceMode guard;
    auto m = toy();
    auto q = make_flexq_quantizer({{"selection", "paper"}});
    REQUIRE(q->supports(m).ok());
    auto r = q->apply(m);
    CHECK(r["a8_layers"] == json({"layers.0.mlp.down_proj", "layers.1.mlp.down_proj", "layers.2.mlp.down_proj"}));
    CHECK(r["bits_per_weight"].get<double>() == doctest::Approx(6.125)); // 6 + 16 / 128, exactly
    for (const auto *l : m.linears()) {
        CAPTURE(l->name);
        REQUIRE(l->qweight);
        CHECK(l->qweight->bits == 6);
        CHECK(l->qweight->group_size == 128);
        CHECK(at::equal(l->qweight->scales.to(at::kHalf).to(at::kFloat), l->qweight->scales));
        CHECK(l->act_quant.group_size == 128);
        CHECK(l->act_quant.bits == (l->name.ends_with("down_proj") ? 8 : 6));
    }
    CHECK(r["activations"] == json({{"a6 g128", 18}, {"a8 g128", 3}}));
}

TEST_CASE("group_int6 and flexq refuse K not divisible by 128, naming the layer") {
    auto m = llama_make_synthetic(test::llama_config_of(128, 192, 1, 4, 4, 32), 0, at::kFloat, at::kCPU);
    auto st = make_group_int_quantizer({})->supports(m);
    CHECK(st.code == status_code::unsupported_shape);
    CHECK(st.reason == "group_int6: layers.0.mlp.down_proj has K=192, not a multiple of group_size=128");
    CHECK(make_flexq_quantizer({})->supports(m).reason == "flexq: layers.0.mlp.down_proj has K=192, not a multiple of group_size=128");
    CHECK(make_group_int_quantizer({{"group_size", 64}, {"a_group_size", 64}})->supports(m).ok());
    // Activation groups are checked too.
    CHECK(make_group_int_quantizer({{"group_size", 64}})->supports(m).reason ==
          "group_int6: layers.0.mlp.down_proj has K=192, not a multiple of a_group_size=128");
}

TEST_CASE("rtn WxAy: per-token activations on every layer, error grows as bits fall") {
    c10::InferenceMode guard;
    auto base = toy();
    auto tokens = tokens_for(base, 2, 32, 3);
    auto ref = at::log_softmax(base.forward(tokens), -1);
    double prev_kl = -1;
    for (int a_bits : {8, 6, 4}) {
        auto m = base;
        auto r = make_rtn_quantizer({{"w_bits", 8}, {"a_bits", a_bits}})->apply(m);
        CHECK(r["activations"] == json({{fmt::format("a{} per-token", a_bits), 21}}));
        // Per output channel, fp16 scales: 8 bits per weight plus 16 bits per row.
        int64_t weights = 0, rows = 0;
        for (const auto *l : m.linears()) weights += l->weight.numel(), rows += l->out_features();
        CHECK(r["bits_per_weight"].get<double>() == doctest::Approx(8.0 + 16.0 * double(rows) / double(weights)));
        // The dense path (no back-end) applies the activation quantization.
        auto lq = at::log_softmax(m.forward(tokens), -1);
        const double kl = (ref.exp() * (ref - lq)).sum(-1).mean().item<double>();
        CHECK(kl > prev_kl);
        prev_kl = kl;
    }
    // The base model was never written: its linears have no quantized weight.
    for (const auto *l : base.linears()) CHECK_FALSE(l->qweight.has_value());
}

TEST_CASE("sensitivity: the planted outlier layer scores highest and is chosen; report files") {
    c10::InferenceMode guard;
    auto m = toy(2);
    plant_down_proj_outlier(m, 1, 5, 300.0);
    auto tokens = tokens_for(m, 4, 64, 11);
    const activation_quant a6{6, 128};
    auto scores = sensitivity_scan(m, tokens, a6, sensitivity_metric::layer_error, 2);
    REQUIRE(scores.size() == 21);
    double planted = 0, others = 0;
    for (const auto &s : scores) {
        if (s.name == "layers.1.mlp.down_proj") planted = s.rel_error;
        else others = std::max(others, s.rel_error);
    }
    MESSAGE("A6 relative output error: planted layer " << planted << ", highest other " << others);
    // With channel 5 300x larger, its group's other 127 channels fall to about zero at A6: the
    // output error is tens of percent; unplanted layers stay at a few percent.
    CHECK(planted > 0.2);
    CHECK(others < 0.1);
    auto chosen = select_sensitive(scores, 0.05, 1);
    CHECK(chosen == std::vector<std::string>{"layers.1.mlp.down_proj"});
    // No probe is left behind.
    for (const auto *l : m.linears()) CHECK(l->runtime == nullptr);

    SUBCASE("the kl metric ranks it first too") {
        auto kl = sensitivity_scan(m, tokens.narrow(0, 0, 2), a6, sensitivity_metric::kl, 2);
        auto best = std::max_element(kl.begin(), kl.end(), [](auto &a, auto &b) { return a.kl < b.kl; });
        CHECK(best->name == "layers.1.mlp.down_proj");
        CHECK(best->score == best->kl);
        for (const auto &s : kl) CHECK(s.kl >= -1e-6); // KL is non-negative up to fp32 rounding of log-softmax
    }

    SUBCASE("flexq end to end writes sensitivity.json/.csv/.png and sets A8 on the chosen layer") {
        test::scratch_dir dir;
        quantize_context ctx;
        ctx.run_dir = dir.path();
        auto r = make_flexq_quantizer({{"calib_windows", 4}, {"calib_seq_len", 64}, {"a8_budget", 1}})->apply(m, ctx);
        CHECK(r["a8_layers"] == json({"layers.1.mlp.down_proj"}));
        CHECK(r["sensitivity"]["calibration"]["kind"] == "random_tokens");
        CHECK(m.layers[1].down_proj.act_quant.bits == 8);
        CHECK(m.layers[0].down_proj.act_quant.bits == 6);
        auto doc = json::parse(read_all(dir.path() / "sensitivity.json"));
        CHECK(doc["layers"].size() == 21);
        CHECK(doc["chosen"] == json({"layers.1.mlp.down_proj"}));
        const std::string csv = read_all(dir.path() / "sensitivity.csv");
        CHECK(std::count(csv.begin(), csv.end(), '\n') == 22);
        const std::string png = read_all(dir.path() / "sensitivity.png");
        REQUIRE(png.size() > 33);
        CHECK(png.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
        CHECK(png.substr(12, 4) == "IHDR");
        CHECK((uint8_t(png[18]) << 8 | uint8_t(png[19])) == 960); // width, big-endian (low half)
    }
}

TEST_CASE("select_sensitive: threshold, budget, and both") {
    std::vector<layer_sensitivity> s(4);
    const double v[] = {0.01, 0.2, 0.06, 0.5};
    for (int i = 0; i < 4; ++i) s[i].name = "l" + std::to_string(i), s[i].score = v[i];
    CHECK(select_sensitive(s, 0.05, -1) == std::vector<std::string>{"l1", "l2", "l3"});
    CHECK(select_sensitive(s, 0.05, 2) == std::vector<std::string>{"l1", "l3"});
    CHECK(select_sensitive(s, 0.0, 1) == std::vector<std::string>{"l3"});
    CHECK(select_sensitive(s, 1.0, -1).empty());
    CHECK(s[3].chosen == false);
}

TEST_CASE("smoothquant: smoothing alone leaves the fp32 model's outputs unchanged") {
    c10::InferenceMode guard;
    auto base = toy(3);
    auto tokens = tokens_for(base, 2, 48, 5);
    auto before = base.forward(tokens);
    auto m = base;
    auto stats = activation_channel_absmax(m, tokens, 2);
    REQUIRE(stats.size() == 21);
    CHECK(stats["layers.0.self_attn.q_proj"].sizes().vec() == std::vector<int64_t>{128});
    CHECK(at::equal(stats["layers.0.self_attn.q_proj"], stats["layers.0.self_attn.v_proj"])); // one input, one statistic
    smooth_model(m, stats, 0.5, true);
    auto after = m.forward(tokens);
    // Exact in real arithmetic; in fp32 each scaled weight, gain and row is rounded once (relative
    // 6e-8) and the differences propagate through 3 layers: 1e-4 of the logits' scale is ~100x
    // that budget and far below any quantization effect (A8 moves logits by ~1e-2 of their scale).
    const double scale = before.abs().max().item<double>();
    CHECK((after - before).abs().max().item<double>() <= 1e-4 * scale);
    // The norms and weights were replaced, not written: the base model is unchanged.
    CHECK_FALSE(m.layers[0].attn_norm.is_same(base.layers[0].attn_norm));
    CHECK(at::equal(base.forward(tokens), before));
}

TEST_CASE("smoothquant W8A8 beats plain W8A8 when an input channel carries an outlier") {
    c10::InferenceMode guard;
    auto base = toy(4);
    // Channel 7 of q/k/v's input 100x larger (attn_norm gain), the weights' columns 100x smaller:
    // the same function with an outlier channel, which per-token activation scales handle badly.
    for (auto &d : base.layers) {
        d.attn_norm = d.attn_norm.clone();
        d.attn_norm[7].mul_(100.0);
        for (auto *l : {&d.q_proj, &d.k_proj, &d.v_proj}) {
            l->weight = l->weight.clone();
            l->weight.select(1, 7).div_(100.0);
        }
    }
    auto tokens = tokens_for(base, 2, 48, 6);
    auto ref = at::log_softmax(base.forward(tokens), -1);
    auto kl_of = [&](const json &opts, bool smooth) {
        auto m = base;
        if (smooth) make_smoothquant_quantizer(opts)->apply(m);
        else make_rtn_quantizer(opts)->apply(m);
        auto lq = at::log_softmax(m.forward(tokens), -1);
        return (ref.exp() * (ref - lq)).sum(-1).mean().item<double>();
    };
    const double plain = kl_of({{"w_bits", 8}, {"a_bits", 6}}, false);
    const double smooth = kl_of({{"w_bits", 8}, {"a_bits", 6}, {"calib_windows", 2}, {"calib_seq_len", 48}}, true);
    MESSAGE("KL W8A6 rtn " << plain << " smoothquant " << smooth);
    CHECK(smooth < 0.5 * plain);
}

TEST_CASE("calibration: random token windows without a tokenizer; text windows from wikitext2 with one") {
    auto m = toy();
    calibration_options o;
    o.windows = 3;
    o.seq_len = 16;
    o.seed = 9;
    auto a = calibration_tokens(m, {}, o), b = calibration_tokens(m, {}, o);
    CHECK(a.tokens.sizes().vec() == std::vector<int64_t>{3, 16});
    CHECK(at::equal(a.tokens, b.tokens)); // seeded
    CHECK(a.source["kind"] == "random_tokens");
    CHECK((a.tokens < m.config.vocab_size).all().item<bool>());
    o.seq_len = 1000;
    CHECK_THROWS_WITH_AS(calibration_tokens(m, {}, o), "calibration: calib_seq_len 1000 exceeds the model's context of 128", qb::error);

    const std::filesystem::path shared = std::filesystem::path(QBENCH_SOURCE_DIR).parent_path() / "shared";
    const auto tok_file = shared / "models/stories260K/tok512.bin";
    if (!std::filesystem::exists(tok_file) || !std::filesystem::exists(shared / "datasets/wikitext2/wiki.valid.raw")) {
        MESSAGE("skipped the text part: " << tok_file << " or wikitext2 not found");
        return;
    }
    auto tok = load_tokenizer(tok_file);
    auto lm = llama_make_synthetic(test::llama_config_of(64, 128, 1, 4, 4, 512, 128), 0, at::kFloat, at::kCPU);
    quantize_context ctx;
    ctx.tok = tok.get();
    ctx.data = data_dir_choice{shared, "test"}; // the data directory, as the runner passes it
    json seen;
    ctx.add_dataset = [&](const std::string &name, json info) { seen[name] = info; };
    o.seq_len = 32;
    auto t = calibration_tokens(lm, ctx, o);
    CHECK(t.tokens.sizes().vec() == std::vector<int64_t>{3, 32});
    CHECK(t.source["kind"] == "text");
    CHECK(t.source["file"]["relative"] == "wikitext2/wiki.valid.raw");
    CHECK(seen.contains("calibration"));
    // The windows are real text: they decode to something with letters.
    auto first = t.tokens[0].to(at::kInt).contiguous();
    const std::string text = tok->decode({first.data_ptr<int32_t>(), size_t(first.numel())});
    CHECK(std::count_if(text.begin(), text.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); }) > 10);
}

TEST_CASE("png encoder: signature, IHDR, chunk CRCs") {
    std::vector<unsigned char> px(3 * 2 * 2, 0);
    px[0] = 255; // one red pixel
    auto png = encode_png_rgb(px, 2, 2);
    CHECK(std::vector<unsigned char>(png.begin(), png.begin() + 8) == std::vector<unsigned char>{0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'});
    // IHDR: length 13, "IHDR", width 2, height 2, depth 8, colour type 2; its CRC is the standard
    // value for these 17 bytes (computed independently with Python's zlib.crc32: 0xfd d4 9a 73).
    const std::vector<unsigned char> ihdr(png.begin() + 8, png.begin() + 33);
    CHECK(ihdr == std::vector<unsigned char>{0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 2, 0, 0, 0, 2, 8, 2, 0, 0, 0, 0xFD, 0xD4, 0x9A, 0x73});
    CHECK(std::string(png.end() - 8, png.end() - 4) == "IEND");
    CHECK_THROWS_AS(encode_png_rgb(px, 3, 2), qb::error);
}

#if QBENCH_HAVE_CUDA
TEST_CASE("GPU back-ends refuse activation settings they cannot run (supports() needs no GPU)") {
    auto m = llama_make_synthetic(test::llama_config_of(128, 256, 1, 4, 4, 32), 0, at::kHalf, at::kCPU);
    auto &l = m.layers[0].q_proj;
    l.qweight = quantize_weight(l.weight, quant_spec_of(6, 128, true, scale_format::fp16));
    const at::Device cuda(at::kCUDA, 0);
    l.act_quant = {6, 128};
    CHECK(backends().get("w6_imma").create({})->supports(l, cuda, at::kHalf).ok());
    auto fp16 = backends().get("fp16").create({})->supports(l, cuda, at::kHalf);
    CHECK(fp16.reason == "fp16: layers.0.self_attn.q_proj asks for activations a6 g128; this back-end runs 16-bit activations");
    CHECK(backends().get("cublaslt_w8a8").create({})->supports(l, cuda, at::kHalf).reason ==
          "cublaslt_w8a8: layers.0.self_attn.q_proj asks for activations a6 g128; this back-end quantizes to int8 per token");
    l.act_quant = {6, 0};
    CHECK(backends().get("w6_imma").create({})->supports(l, cuda, at::kHalf).reason ==
          "w6_imma: layers.0.self_attn.q_proj asks for activations a6 per-token; the kernels quantize per token in groups of 128");
    l.act_quant = {4, 128};
    CHECK(backends().get("flexq_btc").create({})->supports(l, cuda, at::kHalf).reason == "flexq_btc: a_bits must be 6 or 8 (a_bits=4)");
}
#endif

} // TEST_SUITE
