// True low-bit storage: bit packing (every width, odd counts, the 6-bit byte layout), packed
// checkpoints written and read back bit-identical, bits per weight of a LLaMA-2-7B-shaped model
// computed from shapes, and clear errors for damaged files.
#include "quant/methods.h"
#include "quant/packed_checkpoint.h"
#include "test_models.h"
#include "test_util.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <doctest/doctest.h>

#include <fstream>

using namespace qb;

TEST_SUITE("quant") {

TEST_CASE("6-bit codes: 4 values in 3 bytes, least significant bit first") {
    // Fields code + 32: 0, 63, 32, 37 -> 0 | 63 << 6 | 32 << 12 | 37 << 18 = 0x960FC0.
    auto codes = at::tensor(std::vector<int8_t>{-32, 31, 0, 5}, at::TensorOptions().dtype(at::kChar));
    auto bytes = pack_codes(codes, 6);
    REQUIRE(bytes.numel() == 3);
    CHECK(bytes[0].item<uint8_t>() == 0xC0);
    CHECK(bytes[1].item<uint8_t>() == 0x0F);
    CHECK(bytes[2].item<uint8_t>() == 0x96);
    CHECK(at::equal(unpack_codes(bytes, 6, 4), codes));
}

TEST_CASE("pack/unpack round trip: every width 2..8, counts that do not fill the last chunk") {
    auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
    for (int bits = 2; bits <= 8; ++bits)
        for (int64_t count : {1, 2, 3, 5, 7, 9, 1001, 4096}) {
            CAPTURE(bits);
            CAPTURE(count);
            const int64_t lo = -(int64_t(1) << (bits - 1)), hi = (int64_t(1) << (bits - 1));
            auto codes = at::randint(lo, hi, {count}, gen, at::TensorOptions().dtype(at::kLong)).to(at::kChar);
            auto bytes = pack_codes(codes, bits);
            CHECK(bytes.numel() == (count * bits + 7) / 8);
            CHECK((bytes.scalar_type() == at::kByte));
            CHECK(at::equal(unpack_codes(bytes, bits, count), codes));
        }
    CHECK_THROWS_WITH_AS(unpack_codes(at::zeros({4}, at::kByte), 6, 4), "unpack_codes: 4 bytes for 4 codes of 6 bits (expected 3)",
                         qb::error);
}

TEST_CASE("bits per weight of a LLaMA-2-7B-shaped model at W6 g128: 6.125 <= 6.2 (from shapes, nothing allocated)") {
    // LLaMA-2-7B: 32 layers, dim 4096, hidden 11008, no GQA.
    const int64_t dim = 4096, hidden = 11008, layers = 32;
    const std::pair<int64_t, int64_t> shapes[] = {{dim, dim}, {dim, dim}, {dim, dim}, {dim, dim}, {hidden, dim}, {hidden, dim}, {dim, hidden}};
    int64_t bytes = 0, weights = 0;
    for (int64_t l = 0; l < layers; ++l)
        for (auto [n, k] : shapes) {
            bytes += packed_linear_bytes(n, k, 6, 128, true, 2).total();
            weights += n * k;
        }
    const double bpw = 8.0 * double(bytes) / double(weights);
    MESSAGE("LLaMA-2-7B linears: " << weights << " weights, " << double(bytes) / 1e9 << " GB packed, " << bpw << " bits/weight");
    CHECK(weights == 6476005376);
    CHECK(bpw == doctest::Approx(6.125));
    CHECK(bpw <= 6.2);
    CHECK(double(bytes) / 1e9 == doctest::Approx(4.958).epsilon(1e-3)); // vs 6.48 GB in int8 containers, 12.95 GB fp16
    // What int8 containers with fp16 scales would cost: the failure the format exists to avoid.
    CHECK(8.0 + 16.0 / 128 > 6.2);
    // Asymmetric 4-bit g128 with fp16 scales: 4 + 16/128 + 4/128.
    CHECK(8.0 * double(packed_linear_bytes(4096, 4096, 4, 128, false, 2).total()) / (4096.0 * 4096.0) == doctest::Approx(4.15625));
}

TEST_CASE("packed checkpoint: write, read back bit-identical, same logits") {
    c10::InferenceMode guard;
    test::scratch_dir dir;
    // GQA, qkv biases and untied head: every kind of raw tensor is in the file.
    auto cfg = test::llama_config_of(128, 256, 2, 4, 2, 80, 64);
    cfg.qkv_bias = true;
    auto base = llama_make_synthetic(cfg, 3, at::kFloat, at::kCPU);

    SUBCASE("flexq paper preset (symmetric 6-bit, fp16 scales, A8 on down_proj), one linear left unquantized") {
        auto m = base;
        make_flexq_quantizer({{"selection", "paper"}})->apply(m);
        m.layers[1].o_proj.qweight.reset(); // stored raw
        const auto file = dir.path() / "m.qbq";
        auto summary = write_packed_checkpoint(file, m, {{"method", "flexq"}});
        CHECK(summary.file_bytes == int64_t(std::filesystem::file_size(file)));
        CHECK(summary.bits_per_linear_weight() == doctest::Approx(6.125));
        auto header = read_packed_header(file);
        CHECK(header["version"] == packed_format_version);
        CHECK(header["metadata"]["method"] == "flexq");
        CHECK(header["linears"][6]["activations"] == json({{"bits", 8}, {"group_size", 128}}));
        CHECK(header["linears"][6]["codes"]["bytes"] == 128 * 256 * 6 / 8);

        auto back = read_packed_checkpoint(file, at::kCPU, at::kFloat);
        auto a = m.linears(), b = back.model.linears();
        REQUIRE(a.size() == b.size());
        for (size_t i = 0; i < a.size(); ++i) {
            CAPTURE(a[i]->name);
            CHECK(b[i]->name == a[i]->name);
            CHECK(b[i]->act_quant.bits == a[i]->act_quant.bits);
            CHECK(b[i]->act_quant.group_size == a[i]->act_quant.group_size);
            REQUIRE(b[i]->bias.defined() == a[i]->bias.defined()); // q/k/v only (qkv_bias)
            if (a[i]->bias.defined()) CHECK(at::equal(b[i]->bias, a[i]->bias));
            REQUIRE(b[i]->qweight.has_value() == a[i]->qweight.has_value());
            if (!a[i]->qweight) {
                CHECK(at::equal(b[i]->weight, a[i]->weight));
                continue;
            }
            CHECK(at::equal(b[i]->qweight->q, a[i]->qweight->q));
            CHECK(at::equal(b[i]->qweight->scales, a[i]->qweight->scales));
            CHECK(b[i]->qweight->bits == 6);
            CHECK(at::equal(b[i]->weight, a[i]->qweight->dequantize()));
        }
        CHECK(at::equal(back.model.tok_embeddings, m.tok_embeddings));
        CHECK(at::equal(back.model.lm_head, m.lm_head));
        CHECK(at::equal(back.model.layers[1].ffn_norm, m.layers[1].ffn_norm));
        CHECK(back.model.config.to_json() == m.config.to_json());
        CHECK(back.inputs["packed_checkpoint"]["metadata"]["method"] == "flexq");
        // Same computation: the original with its dequantized weights vs the loaded model.
        for (auto *l : m.linears())
            if (l->qweight) l->weight = l->qweight->dequantize();
        auto tokens = at::arange(20, at::TensorOptions().dtype(at::kLong)).view({2, 10});
        CHECK(at::equal(back.model.forward(tokens), m.forward(tokens)));
    }

    SUBCASE("asymmetric 3-bit g32 with fp32 scales, odd sizes") {
        auto odd = llama_make_synthetic(test::llama_config_of(96, 160, 1, 3, 3, 40, 32), 5, at::kHalf, at::kCPU);
        make_rtn_quantizer({{"w_bits", 3}, {"group_size", 32}, {"symmetric", false}, {"scale_dtype", "fp32"}})->apply(odd);
        const auto file = dir.path() / "odd.qbq";
        auto summary = write_packed_checkpoint(file, odd, json::object());
        const auto &h = read_packed_header(file);
        CHECK(h["linears"][0]["scale_dtype"] == "fp32");
        CHECK(h["linears"][0]["zero_points"]["bytes"] == (96 * 3 * 3 + 7) / 8);
        CHECK(summary.bits_per_linear_weight() == doctest::Approx(3 + 32.0 / 32 + 3.0 / 32).epsilon(1e-3));
        auto back = read_packed_checkpoint(file, at::kCPU, at::kHalf);
        auto a = odd.linears(), b = back.model.linears();
        for (size_t i = 0; i < a.size(); ++i) {
            CAPTURE(a[i]->name);
            CHECK(at::equal(b[i]->qweight->q, a[i]->qweight->q));
            CHECK(at::equal(b[i]->qweight->scales, a[i]->qweight->scales));
            CHECK(at::equal(b[i]->qweight->zero_points, a[i]->qweight->zero_points));
        }
        CHECK((back.model.dtype() == at::kHalf));
    }

    SUBCASE("damaged files are refused with what is wrong") {
        auto m = base;
        make_group_int_quantizer({})->apply(m);
        const auto file = dir.path() / "t.qbq";
        write_packed_checkpoint(file, m, json::object());
        const auto size = std::filesystem::file_size(file);
        std::filesystem::resize_file(file, size - 10);
        CHECK_THROWS_WITH_AS(read_packed_checkpoint(file, at::kCPU, at::kFloat), doctest::Contains("truncated or padded"), qb::error);
        const auto junk = dir.write("junk.qbq", std::string(64, 'x'));
        CHECK_THROWS_WITH_AS(read_packed_header(junk), doctest::Contains("is not a qbench packed checkpoint"), qb::error);
        write_packed_checkpoint(file, m, json::object());
        {
            std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
            f.seekp(8);
            const uint32_t v = 99;
            f.write(reinterpret_cast<const char *>(&v), 4);
        }
        CHECK_THROWS_WITH_AS(read_packed_header(file), doctest::Contains("packed format version 99 (this qbench reads version 1)"), qb::error);
    }
}

} // TEST_SUITE
