// Round-to-nearest weights against hand-computed cases: scales, ties (half to even), clamps.
#include "quant/quantizer.h"
#include "test_models.h"

#include <ATen/ATen.h>
#include <doctest/doctest.h>

using namespace qb;

TEST_SUITE("quant") {

TEST_CASE("symmetric 4-bit per channel: scale = absmax / 7, ties round to even") {
    // Row absmax 7 -> scale 1: values 0.5, 1.5, 2.5, -2.5 are ties.
    auto w = at::tensor({7.0f, 0.5f, 1.5f, 2.5f, -2.5f, -7.0f, 3.49f, -0.51f}).view({1, 8});
    auto q = quantize_weight_rtn(w, 4, 0, true);
    CHECK(q.scales.item<float>() == 1.0f);
    auto got = q.q.to(at::kInt);
    std::vector<int> expect = {7, 0, 2, 2, -2, -7, 3, -1};
    for (int i = 0; i < 8; ++i) CHECK_MESSAGE(got[0][i].item<int>() == expect[i], "index " << i);
    CHECK(at::equal(q.dequantize(), got.to(at::kFloat)));
}

TEST_CASE("symmetric groups: one scale per group along K") {
    auto w = at::tensor({1.0f, -2.0f, 10.0f, 5.0f, -127.0f, 64.0f, 0.5f, 0.25f}).view({2, 4});
    auto q = quantize_weight_rtn(w, 8, 2, true);
    REQUIRE(q.scales.sizes() == at::IntArrayRef({2, 2}));
    CHECK(q.scales[0][0].item<float>() == doctest::Approx(2.0 / 127));
    CHECK(q.scales[0][1].item<float>() == doctest::Approx(10.0 / 127));
    CHECK(q.scales[1][0].item<float>() == doctest::Approx(1.0));
    CHECK(q.q[1][0].item<int8_t>() == -127); // -128 never occurs with absmax / 127
    CHECK(q.q[1][1].item<int8_t>() == 64);
    CHECK(q.q[0][2].item<int8_t>() == 127);
}

TEST_CASE("an all-zero group quantizes to zeros, not NaN") {
    auto w = at::zeros({2, 4});
    auto q = quantize_weight_rtn(w, 6, 0, true);
    CHECK(at::isfinite(q.dequantize()).all().item<bool>());
    CHECK((q.dequantize() == 0).all().item<bool>());
}

TEST_CASE("asymmetric 2-bit: codes 0..3 around a zero point") {
    // min -1, max 2 -> scale 1, zero = 1: -1 -> 0, 0 -> 1, 2 -> 3.
    auto w = at::tensor({-1.0f, 0.0f, 2.0f, 0.9f}).view({1, 4});
    auto q = quantize_weight_rtn(w, 2, 0, false);
    CHECK(q.scales.item<float>() == doctest::Approx(1.0));
    auto dq = q.dequantize();
    CHECK(dq[0][0].item<float>() == doctest::Approx(-1.0));
    CHECK(dq[0][1].item<float>() == doctest::Approx(0.0));
    CHECK(dq[0][2].item<float>() == doctest::Approx(2.0));
    CHECK(dq[0][3].item<float>() == doctest::Approx(1.0));
}

TEST_CASE("error shrinks with bits; round trip error bounded by half a step") {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(0);
    auto w = at::normal(0.0, 1.0, {64, 256}, gen, at::TensorOptions().dtype(at::kFloat));
    double prev = 1e9;
    for (int bits : {2, 4, 6, 8}) {
        auto q = quantize_weight_rtn(w, bits, 128, true);
        auto err = (q.dequantize() - w).abs();
        auto half_step = q.scales.repeat_interleave(128, 1) / 2;
        CHECK((err <= half_step + 1e-6).all().item<bool>());
        double rel = (q.dequantize() - w).norm().item<double>() / w.norm().item<double>();
        CHECK(rel < prev);
        prev = rel;
    }
}

TEST_CASE("rtn refuses a group size that does not divide K, naming the layer") {
    auto m = llama_make_synthetic(test::llama_config_of(64, 96, 1, 4, 4, 16), 0, at::kFloat, at::kCPU);
    auto q = make_rtn_quantizer({{"w_bits", 4}, {"group_size", 64}, {"symmetric", true}});
    auto st = q->supports(m);
    CHECK_FALSE(st.ok());
    CHECK(st.code == status_code::unsupported_shape);
    CHECK(st.reason == "rtn: layers.0.mlp.down_proj has K=96, not a multiple of group_size=64");
    auto ok = make_rtn_quantizer({{"w_bits", 4}, {"group_size", 32}, {"symmetric", true}});
    CHECK(ok->supports(m).ok());
    auto report = ok->apply(m);
    CHECK(report["bits_per_weight"].get<double>() == doctest::Approx(4.0 + 16.0 / 32));
    for (const auto *l : m.linears()) CHECK(l->qweight.has_value());
}

} // TEST_SUITE
