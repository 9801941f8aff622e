// Quantization primitives against hand-computed cases (ties, clamps, tiny and zero scales, fp16
// scale rounding), every granularity and bit width, asymmetric zero points, and bit identity with
// the kernels' CPU reference (kernels/quant_pack/w6_ref.cpp).
#include "core/error.h"
#include "quant/primitives.h"
#include "quant_pack/w6_ref.h"

#include <ATen/ATen.h>
#include <doctest/doctest.h>

#include <cmath>

using namespace qb;

namespace {

at::Tensor row(std::vector<float> v) { return at::tensor(v, at::TensorOptions().dtype(at::kFloat)).view({1, int64_t(v.size())}); }

std::vector<int> codes_of(const quantized_tensor &t) {
    auto q = t.q.to(at::kInt).reshape({-1}).contiguous();
    return std::vector<int>(q.data_ptr<int>(), q.data_ptr<int>() + q.numel());
}

} // namespace

TEST_SUITE("quant") {

TEST_CASE("symmetric int6, scale 1: ties round half to even, -32 never produced by absmax/31") {
    // absmax 31 -> scale 31/31 = 1 exactly (also in fp16): x/scale is x, so 0.5, 1.5, 2.5 are ties.
    auto x = row({31.f, 0.5f, 1.5f, 2.5f, -2.5f, -0.5f, 3.5f, -31.f});
    for (auto sf : {scale_format::fp32, scale_format::fp16}) {
        auto t = quantize(x, quant_spec_of(6, 0, true, sf));
        CHECK(t.scales.item<float>() == 1.0f);
        CHECK(codes_of(t) == std::vector<int>{31, 0, 2, 2, -2, 0, 4, -31});
        CHECK(at::equal(dequantize(t), t.q.to(at::kFloat)));
    }
}

TEST_CASE("fp16 scales: clamp to [1e-5, 1e4] and round to nearest even") {
    SUBCASE("3.1/31 rounds to the fp16 0.0999755859375; codes use the stored scale") {
        auto t = quantize(row({3.1f, -1.0f}), quant_spec_of(6, 0, true, scale_format::fp16));
        CHECK(t.scales.item<float>() == 0.0999755859375f); // fp16 nearest to 0.1f (0x2E66)
        CHECK(codes_of(t) == std::vector<int>{31, -10});  // 3.1/0.09998 = 31.008 -> 31; -1/0.09998 = -10.002 -> -10
    }
    SUBCASE("upper clamp: absmax 1e6 -> scale 1e4, codes clamp to [-32, 31]") {
        auto t = quantize(row({1e6f, -1e6f, 5e4f, -3.2e5f}), quant_spec_of(6, 0, true, scale_format::fp16));
        CHECK(t.scales.item<float>() == 10000.0f);
        CHECK(codes_of(t) == std::vector<int>{31, -32, 5, -32});
    }
    SUBCASE("lower clamp: tiny values get the fp16 value of 1e-5 (a subnormal, 168 * 2^-24) and code 0") {
        auto t = quantize(row({1e-7f, -2e-7f}), quant_spec_of(6, 0, true, scale_format::fp16));
        CHECK(t.scales.item<float>() == std::ldexp(168.0f, -24));
        CHECK(codes_of(t) == std::vector<int>{0, 0});
    }
    SUBCASE("an all-zero group dequantizes to zeros") {
        auto t = quantize(at::zeros({2, 8}), quant_spec_of(4, 4, true, scale_format::fp16));
        CHECK((dequantize(t) == 0).all().item<bool>());
    }
}

TEST_CASE("fp32 scales: zero groups get scale 0 and codes 0 (the kernels' activation rule); tiny scales stay exact") {
    auto t = quantize(at::zeros({3, 4}), quant_spec_of(8, 0, true, scale_format::fp32));
    CHECK((t.scales == 0).all().item<bool>());
    CHECK((t.q == 0).all().item<bool>());
    CHECK(at::isfinite(dequantize(t)).all().item<bool>());
    // absmax 127 * 2^-110 -> scale 2^-110 (~7.7e-34, still a normal fp32): no floor, exact ties.
    const float u = std::ldexp(1.0f, -110);
    auto tiny = quantize(row({127 * u, -0.5f * u, 0.6f * u, 2.5f * u}), quant_spec_of(8, 0, true, scale_format::fp32));
    CHECK(tiny.scales.item<float>() == u);
    CHECK(codes_of(tiny) == std::vector<int>{127, 0, 1, 2}); // -0.5 and 2.5 tie to even
}

TEST_CASE("asymmetric: zero point, codes 0..2^b-1 shifted into int8, dequantize (q - zp) * scale") {
    // min -1, max 2 at 2 bits: scale 3/3 = 1, zero = rint(1) = 1; -1 -> 0, 0 -> 1, 2 -> 3, 0.9 -> 2.
    auto t = quantize(row({-1.f, 0.f, 2.f, 0.9f}), quant_spec_of(2, 0, false, scale_format::fp32));
    CHECK(t.scales.item<float>() == 1.0f);
    CHECK(t.zero_points.item<float>() == 1.0f - 2.0f);        // stored shifted by 2^(b-1) = 2
    CHECK(codes_of(t) == std::vector<int>{-2, -1, 1, 0});     // 0, 1, 3, 2 shifted by -2
    auto d = dequantize(t);
    CHECK(at::equal(d, row({-1.f, 0.f, 2.f, 1.f})));
    // All-positive group: lo = 0, so zero = 0 and 0 stays exactly 0.
    auto p = quantize(row({0.f, 1.f, 3.f, 1.5f}), quant_spec_of(2, 0, false, scale_format::fp32));
    CHECK(p.zero_points.item<float>() == -2.0f);
    CHECK(at::equal(dequantize(p), row({0.f, 1.f, 3.f, 2.f}))); // 1.5 ties to 2 (even)
}

TEST_CASE("every granularity and bit width: shapes, code range, error within half a step") {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(7);
    auto x = at::normal(0.0, 1.0, {6, 96}, gen, at::TensorOptions().dtype(at::kFloat));
    for (int bits = 2; bits <= 8; ++bits)
        for (bool sym : {true, false})
            for (int gi = 0; gi < 3; ++gi) {
                quant_spec s = quant_spec_of(bits, gi == 2 ? 32 : 0, sym, scale_format::fp32);
                if (gi == 0) s.gran = granularity::tensor;
                CAPTURE(s.describe());
                auto t = quantize(x, s);
                const std::vector<int64_t> shape = gi == 0 ? std::vector<int64_t>{1} : gi == 1 ? std::vector<int64_t>{6, 1} : std::vector<int64_t>{6, 3};
                CHECK(t.scales.sizes().vec() == shape);
                const int lo = -(1 << (bits - 1)), hi = (1 << (bits - 1)) - 1;
                CHECK(t.q.min().item<int>() >= lo);
                CHECK(t.q.max().item<int>() <= hi);
                if (sym) CHECK(t.q.min().item<int>() >= lo + 1); // absmax / qmax: the lowest code is unused
                else CHECK((t.zero_points == t.zero_points.round()).all().item<bool>());
                // |x - deq| <= scale / 2 (+ fp32 rounding of x/scale and q*scale: 1e-6 relative).
                auto err = (dequantize(t) - x).abs();
                auto e = t.spec.gran == granularity::tensor ? x.numel() : t.spec.elements_per_scale(96);
                auto half = t.scales.reshape({-1, 1}).repeat_interleave(e, 1).reshape(x.sizes()) / 2;
                CHECK((err <= half * (1 + 1e-6) + 1e-7).all().item<bool>());
                // Fake quantization is idempotent: quantizing the dequantized tensor changes nothing.
                auto d = dequantize(t);
                CHECK(at::allclose(fake_quantize(d, s), d, 1e-6, 1e-7));
            }
}

TEST_CASE("group shapes: K not divisible by the group is refused with the values") {
    CHECK(quant_spec_problem(quant_spec_of(6, 128, true, scale_format::fp16), 192) == "K=192 is not a multiple of group_size=128");
    CHECK(quant_spec_problem(quant_spec_of(6, 64, true, scale_format::fp16), 192).empty());
    CHECK(quant_spec_problem(quant_spec_of(1, 0, true, scale_format::fp16), 64) == "bits must be in [2, 8] (bits=1)");
    CHECK_THROWS_WITH_AS(quantize(at::zeros({2, 192}), quant_spec_of(6, 128, true, scale_format::fp16)),
                         "quantize (int6 sym g128 fp16-scales): K=192 is not a multiple of group_size=128", qb::error);
    // Activations [B, T, K]: groups along the last dimension, scales [B, T, K / g].
    auto t = quantize(at::ones({2, 3, 256}), activation_spec({6, 128}));
    CHECK(t.scales.sizes().vec() == std::vector<int64_t>{2, 3, 2});
}

TEST_CASE("W6 g128 weights are bit-identical to the kernels' reference (quantize_weights_ref)") {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(3);
    auto w = at::normal(0.0, 0.02, {48, 384}, gen, at::TensorOptions().dtype(at::kFloat));
    w.index_put_({5, 7}, 3.0f);         // an outlier group
    w.index_put_({9, at::indexing::Slice(128, 256)}, 0.0f); // a zero group (clamp to 1e-5)
    w.index_put_({11, at::indexing::Slice(0, 128)}, 1e-7f); // a tiny group
    auto ours = quantize_weight(w, quant_spec_of(6, 128, true, scale_format::fp16));
    auto ref = w6::quantize_weights_ref(w.contiguous().data_ptr<float>(), 48, 384);
    auto q = ours.q.contiguous();
    CHECK(std::equal(ref.q.begin(), ref.q.end(), q.data_ptr<int8_t>()));
    auto s = ours.scales.contiguous();
    int mismatched = 0;
    for (size_t i = 0; i < ref.scales.size(); ++i) mismatched += w6::half_to_float(ref.scales[i]) != s.data_ptr<float>()[i];
    CHECK(mismatched == 0);
}

TEST_CASE("A6/A8 per-token-group and per-token activations are bit-identical to quantize_acts_ref") {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(4);
    auto x = at::normal(0.0, 1.0, {5, 256}, gen, at::TensorOptions().dtype(at::kFloat)).to(at::kHalf);
    x.index_put_({2, 3}, 40.0f);
    x.index_put_({4}, 0.0f); // a zero token: scale 0, codes 0
    auto bits_of = x.contiguous().view(at::kShort);
    for (int bits : {6, 8})
        for (int group : {128, 256}) {
            CAPTURE(bits);
            CAPTURE(group);
            auto ref = w6::quantize_acts_ref(reinterpret_cast<const uint16_t *>(bits_of.data_ptr<int16_t>()), 5, 256, bits, group);
            auto t = quantize(x, activation_spec({bits, group == 256 ? 0 : group}));
            auto q = t.q.contiguous();
            CHECK(std::equal(ref.q.begin(), ref.q.end(), q.data_ptr<int8_t>()));
            // Reference scales are [groups][m]; ours [m, groups].
            auto s = t.scales.t().contiguous();
            CHECK(std::equal(ref.scales.begin(), ref.scales.end(), s.data_ptr<float>()));
        }
}

TEST_CASE("activation_quant: the dense path applies it; describe() names it") {
    activation_quant none, a8{8, 0}, a6{6, 128};
    CHECK(none.describe() == "a16");
    CHECK(a8.describe() == "a8 per-token");
    CHECK(a6.describe() == "a6 g128");
    auto gen = at::make_generator<at::CPUGeneratorImpl>(5);
    auto x = at::normal(0.0, 1.0, {2, 3, 128}, gen, at::TensorOptions().dtype(at::kFloat));
    CHECK(none.apply(x).is_same(x));
    linear_layer l;
    l.name = "t";
    l.weight = at::normal(0.0, 0.1, {16, 128}, gen, at::TensorOptions().dtype(at::kFloat));
    l.act_quant = a6;
    auto expect = at::linear(fake_quantize(x, activation_spec(a6)), l.weight);
    CHECK(at::equal(l.forward(x), expect));
    CHECK_FALSE(at::allclose(l.forward(x), at::linear(x, l.weight), 0, 1e-6)); // it did quantize
}

} // TEST_SUITE
