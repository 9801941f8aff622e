// safetensors: single files and sharded checkpoints written here, the file written by the
// safetensors package (tests/fixtures/formats), every error path, config.json, and the time
// to open a LLaMA-7B-sized fp16 checkpoint (a sparse file: opening must not read the data).
#include "format_test_util.h"
#include "formats/safetensors.h"
#include "test_util.h"

#include <doctest/doctest.h>

#include <chrono>
#include <fstream>

using namespace qb;
namespace fs = std::filesystem;

namespace {

json entry(const std::string &dtype, std::vector<int64_t> shape, uint64_t begin, uint64_t end) {
    return {{"dtype", dtype}, {"shape", shape}, {"data_offsets", {begin, end}}};
}

// w: F32 [2, 3] = 0..5 at [0, 24); h: F16 [4] = 1, -2, 0.5, 65504 at [24, 32); b: BF16 [2, 2]
// = 1, -3, 0.5, 256 at [32, 40); s: F32 scalar 42 at [40, 44).
std::pair<json, std::string> small_file() {
    json h = {{"__metadata__", {{"format", "pt"}, {"note", "qbench test"}}},
              {"w", entry("F32", {2, 3}, 0, 24)},
              {"h", entry("F16", {4}, 24, 32)},
              {"b", entry("BF16", {2, 2}, 32, 40)},
              {"s", entry("F32", {}, 40, 44)}};
    std::string data = test::bytes_of(std::vector<float>{0, 1, 2, 3, 4, 5});
    data += test::bytes_of(std::vector<uint16_t>{0x3C00, 0xC000, 0x3800, 0x7BFF});
    data += test::bytes_of(std::vector<uint16_t>{0x3F80, 0xC040, 0x3F00, 0x4380});
    data += test::bytes_of(std::vector<float>{42});
    return {h, data};
}

std::string open_error(const fs::path &p) { return test::open_error<safetensors_checkpoint>(p); }

} // namespace

TEST_SUITE("formats") {

TEST_CASE("formats/safetensors/single: F32, F16, BF16 and a scalar read back exactly, __metadata__ kept") {
    test::scratch_dir dir;
    const auto [header, data] = small_file();
    const auto path = dir.write("model.safetensors", test::safetensors_bytes(header, data));
    safetensors_file f(path);
    CHECK(f.metadata() == json({{"format", "pt"}, {"note", "qbench test"}}));
    CHECK(f.header_bytes() % 8 == 0);
    REQUIRE(f.tensors().size() == 4);
    const auto &w = f.tensors().at("w");
    CHECK(w.dtype == tensor_dtype::f32);
    CHECK(w.shape == std::vector<int64_t>{2, 3});
    CHECK(w.bytes == 24);
    CHECK(w.data == f.tensors().at("h").data - 24);
    CHECK(tensor_read_f32(w) == std::vector<float>{0, 1, 2, 3, 4, 5});
    CHECK(tensor_read_f32(f.tensors().at("h")) == std::vector<float>{1, -2, 0.5f, 65504});
    CHECK(tensor_read_f32(f.tensors().at("b")) == std::vector<float>{1, -3, 0.5f, 256});
    CHECK(f.tensors().at("s").shape.empty());
    CHECK(tensor_read_f32(f.tensors().at("s")) == std::vector<float>{42});

    // The folder form finds model.safetensors.
    safetensors_checkpoint c(dir.path());
    CHECK(c.shards().size() == 1);
    CHECK(c.tensors().size() == 4);
    CHECK(tensor_read_f32(c.tensors().at("w"))[5] == 5.0f);
}

TEST_CASE("formats/safetensors/python: the file written by the safetensors package reads back exactly") {
    // scripts/make_gguf_fixtures.py: layer.weight = arange(12).reshape(3, 4) * 0.5 - 1 (F32),
    // layer.bias_f16 = (arange(6) / 8).reshape(2, 3) (F16, exact), scalar = 7.5.
    safetensors_file f(test::fixture_dir() / "gguf_py_tiny.safetensors");
    CHECK(f.metadata()["format"] == "pt");
    CHECK(f.metadata()["source"] == "make_gguf_fixtures.py");
    REQUIRE(f.tensors().size() == 3);
    const auto &w = f.tensors().at("layer.weight");
    CHECK(w.shape == std::vector<int64_t>{3, 4});
    const auto wv = tensor_read_f32(w);
    for (int i = 0; i < 12; ++i) CHECK(wv[static_cast<size_t>(i)] == static_cast<float>(i) * 0.5f - 1.0f);
    const auto &b = f.tensors().at("layer.bias_f16");
    CHECK(b.dtype == tensor_dtype::f16);
    CHECK(b.shape == std::vector<int64_t>{2, 3});
    const auto bv = tensor_read_f32(b);
    for (int i = 0; i < 6; ++i) CHECK(bv[static_cast<size_t>(i)] == static_cast<float>(i) / 8.0f);
    CHECK(f.tensors().at("scalar").shape.empty());
    CHECK(tensor_read_f32(f.tensors().at("scalar"))[0] == 7.5f);
}

TEST_CASE("formats/safetensors/errors: every broken file is refused with a message naming what and where") {
    test::scratch_dir dir;
    auto expect = [&](const std::string &bytes, const std::string &wanted) {
        test::expect_open_error<safetensors_checkpoint>(dir.path() / "bad.safetensors", bytes, wanted);
    };
    auto [header, data] = small_file();
    const std::string good = test::safetensors_bytes(header, data);

    SUBCASE("too small") { expect("abc", "file is 3 bytes, too small for a safetensors file (8-byte header length first)"); }
    SUBCASE("header length over the limit") {
        std::string b = good;
        const uint64_t n = 200'000'000;
        std::memcpy(b.data(), &n, 8);
        expect(b, "header length 200000000 exceeds the safetensors limit of 100000000 bytes (corrupt, or not a safetensors file)");
    }
    SUBCASE("header length past the end of the file") {
        std::string b = good.substr(0, 8 + 20);
        expect(b, "header length " + std::to_string(good.size() - 8 - data.size()) + " runs past the end of the file (20 bytes after the length field; truncated?)");
    }
    SUBCASE("not JSON") {
        std::string b;
        test::put<uint64_t>(b, 8);
        expect(b + "{\"a\": [}", "the 8-byte header is not valid JSON: ");
    }
    SUBCASE("not an object") { expect(test::safetensors_bytes(json::array({1, 2}), ""), "the header must be a JSON object, found [1,2]"); }
    SUBCASE("unsupported dtype") {
        header["w"]["dtype"] = "I64";
        header["w"]["shape"] = {3};
        expect(test::safetensors_bytes(header, data), "tensor 'w' has the unsupported dtype I64; qbench reads F32, F16 and BF16");
    }
    SUBCASE("unknown dtype") {
        header["h"]["dtype"] = "Q4";
        expect(test::safetensors_bytes(header, data), "tensor 'h' has the unknown dtype Q4; qbench reads F32, F16 and BF16");
    }
    SUBCASE("missing field") {
        header["h"].erase("shape");
        expect(test::safetensors_bytes(header, data), "tensor 'h' has no \"shape\"");
    }
    SUBCASE("negative dimension") {
        header["w"]["shape"] = {-2, 3};
        expect(test::safetensors_bytes(header, data), "tensor 'w': \"shape\" must hold non-negative integers, found [-2,3]");
    }
    SUBCASE("offsets outside the file (truncated data)") {
        expect(test::safetensors_bytes(header, data.substr(0, 40)),
               "tensor 's': data_offsets [40, 44) run past the end of the data section (40 bytes; file truncated?)");
    }
    SUBCASE("size does not match the shape") {
        header["w"]["shape"] = {2, 2};
        expect(test::safetensors_bytes(header, data), "tensor 'w' F32 [2, 2]: data_offsets [0, 24) hold 24 bytes, the shape needs 16");
    }
    SUBCASE("offsets reversed") {
        header["h"]["data_offsets"] = {32, 24};
        expect(test::safetensors_bytes(header, data), "tensor 'h': data_offsets [32, 24) end before they begin");
    }
    SUBCASE("overlapping tensors") {
        header["h"]["data_offsets"] = {20, 28};
        expect(test::safetensors_bytes(header, data), "tensors 'w' [0, 24) and 'h' [20, 28) overlap in the data section");
    }
    SUBCASE("a hole between tensors") {
        header["b"]["data_offsets"] = {36, 44};
        header["s"]["data_offsets"] = {44, 48};
        expect(test::safetensors_bytes(header, data + "pad!"), "bytes [32, 36) of the data section belong to no tensor (before 'b')");
    }
    SUBCASE("bytes after the last tensor") {
        expect(test::safetensors_bytes(header, data + "xyz"), "3 bytes after the last tensor's data (data section is 47 bytes, tensors cover 44)");
    }
    SUBCASE("bad metadata") {
        header["__metadata__"] = "x";
        expect(test::safetensors_bytes(header, data), "\"__metadata__\" must be an object of strings, found \"x\"");
        header["__metadata__"] = {{"n", 1}};
        expect(test::safetensors_bytes(header, data), "\"__metadata__\" must be an object of strings, found {\"n\":1}");
    }
}

TEST_CASE("formats/safetensors/sharded: index.json maps tensors to shards, each opened once") {
    test::scratch_dir dir;
    // shard 1: a [2] F32, b [1] F16; shard 2: c [3] BF16.
    json h1 = {{"a", entry("F32", {2}, 0, 8)}, {"b", entry("F16", {1}, 8, 10)}};
    json h2 = {{"c", entry("BF16", {3}, 0, 6)}};
    const auto s1 = test::bytes_of(std::vector<float>{1.5f, -2.5f}) + test::bytes_of(std::vector<uint16_t>{0x4000});
    const auto s2 = test::bytes_of(std::vector<uint16_t>{0x3F80, 0x4000, 0x4040});
    dir.write("model-00001-of-00002.safetensors", test::safetensors_bytes(h1, s1));
    dir.write("model-00002-of-00002.safetensors", test::safetensors_bytes(h2, s2));
    json index = {{"metadata", {{"total_size", 24}}},
                  {"weight_map", {{"a", "model-00001-of-00002.safetensors"}, {"b", "model-00001-of-00002.safetensors"},
                                  {"c", "model-00002-of-00002.safetensors"}}}};
    const auto index_path = dir.write("model.safetensors.index.json", index.dump());

    for (const auto &p : {dir.path(), index_path}) {
        safetensors_checkpoint c(p);
        CHECK(c.shards().size() == 2);
        CHECK(c.index_metadata()["total_size"] == 24);
        REQUIRE(c.tensors().size() == 3);
        CHECK(tensor_read_f32(c.tensors().at("a")) == std::vector<float>{1.5f, -2.5f});
        CHECK(tensor_read_f32(c.tensors().at("b")) == std::vector<float>{2.0f});
        CHECK(tensor_read_f32(c.tensors().at("c")) == std::vector<float>{1.0f, 2.0f, 3.0f});
        CHECK(c.tensors().at("c").data == c.shards()[1].tensors().at("c").data); // a view into shard 2's mapping
    }

    const std::string where = index_path.string();
    SUBCASE("missing shard") {
        index["weight_map"]["d"] = "model-00003-of-00003.safetensors";
        dir.write("model.safetensors.index.json", index.dump());
        CHECK(open_error(dir.path()) == where + ": shard model-00003-of-00003.safetensors (listed for 1 tensors, e.g. 'd') not found in " +
                                            dir.path().string());
    }
    SUBCASE("tensor not in its shard") {
        index["weight_map"]["c"] = "model-00001-of-00002.safetensors";
        index["weight_map"]["a"] = "model-00002-of-00002.safetensors";
        dir.write("model.safetensors.index.json", index.dump());
        CHECK(open_error(dir.path()) ==
              where + ": weight_map puts tensor 'a' in model-00002-of-00002.safetensors, which does not contain it (1 tensors there)");
    }
    SUBCASE("same tensor in two shards") {
        json h3 = {{"a", entry("F32", {1}, 0, 4)}};
        dir.write("extra.safetensors", test::safetensors_bytes(h3, test::bytes_of(std::vector<float>{0})));
        index["weight_map"]["x"] = "extra.safetensors";
        dir.write("model.safetensors.index.json", index.dump());
        // "x" is listed but absent from extra.safetensors: that is found first
        CHECK(open_error(dir.path()).find("weight_map puts tensor 'x' in extra.safetensors, which does not contain it") != std::string::npos);
        index["weight_map"].erase("x");
        index["weight_map"]["a"] = "extra.safetensors";
        dir.write("model.safetensors.index.json", index.dump());
        CHECK(open_error(dir.path()) ==
              "tensor 'a' is in two shards of " + where + ": extra.safetensors and model-00001-of-00002.safetensors");
    }
    SUBCASE("index without weight_map") {
        dir.write("model.safetensors.index.json", "{\"metadata\": {}}");
        CHECK(open_error(dir.path()) == where + ": expected an object with \"weight_map\": {tensor: shard file}");
    }
    SUBCASE("index not JSON") {
        dir.write("model.safetensors.index.json", "{");
        CHECK(open_error(dir.path()).find("safetensors index " + where + " is not valid JSON") == 0);
    }
    SUBCASE("a broken shard names the shard") {
        dir.write("model-00002-of-00002.safetensors", test::safetensors_bytes(h2, s2.substr(0, 4)));
        CHECK(open_error(dir.path()) == (dir.path() / "model-00002-of-00002.safetensors").string() +
                                            ": tensor 'c': data_offsets [0, 6) run past the end of the data section (4 bytes; file truncated?)");
    }
    SUBCASE("no checkpoint in the folder") {
        test::scratch_dir empty;
        CHECK(open_error(empty.path()) ==
              "no safetensors checkpoint in " + empty.path().string() + ": expected model.safetensors or model.safetensors.index.json");
    }
}

TEST_CASE("formats/safetensors/config: config.json parsed, LLaMA keys type-checked") {
    test::scratch_dir dir;
    const json cfg = {{"architectures", {"LlamaForCausalLM"}},
                      {"model_type", "llama"},
                      {"hidden_size", 2048},
                      {"intermediate_size", 8192},
                      {"num_hidden_layers", 16},
                      {"num_attention_heads", 32},
                      {"num_key_value_heads", 8},
                      {"vocab_size", 128256},
                      {"max_position_embeddings", 131072},
                      {"rms_norm_eps", 1e-5},
                      {"rope_theta", 500000.0},
                      {"rope_scaling",
                       {{"factor", 32.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 8192},
                        {"rope_type", "llama3"}}},
                      {"tie_word_embeddings", true},
                      {"attention_bias", false}};
    dir.write("config.json", cfg.dump(2));
    const json got = hf_config_read(dir.path());
    CHECK(got == cfg);
    CHECK(got["rope_scaling"]["factor"].get<double>() == 32.0);
    CHECK(hf_config_read(dir.path() / "config.json")["num_key_value_heads"] == 8);

    const std::string file = (dir.path() / "config.json").string();
    auto bad = cfg;
    bad["hidden_size"] = "2048";
    dir.write("config.json", bad.dump());
    CHECK_THROWS_WITH_AS(hf_config_read(dir.path()), (file + ": 'hidden_size' should be an integer, found \"2048\"").c_str(), qb::error);
    bad = cfg;
    bad["rope_scaling"]["factor"] = "x";
    dir.write("config.json", bad.dump());
    CHECK_THROWS_WITH_AS(hf_config_read(dir.path()), (file + ": 'rope_scaling.factor' should be a number, found \"x\"").c_str(), qb::error);
    bad = cfg;
    bad["tie_word_embeddings"] = 1;
    dir.write("config.json", bad.dump());
    CHECK_THROWS_WITH_AS(hf_config_read(dir.path()), (file + ": 'tie_word_embeddings' should be a boolean, found 1").c_str(), qb::error);
    bad = cfg;
    bad["rope_scaling"] = nullptr; // null: no scaling, fine
    dir.write("config.json", bad.dump());
    CHECK(hf_config_read(dir.path())["rope_scaling"].is_null());
    dir.write("config.json", "[1]");
    CHECK_THROWS_WITH_AS(hf_config_read(dir.path()), (file + ": expected a JSON object, found [1]").c_str(), qb::error);
    test::scratch_dir empty;
    CHECK_THROWS_WITH_AS(hf_config_read(empty.path()), ("Hugging Face config not found: " + (empty.path() / "config.json").string()).c_str(),
                         qb::error);
}

TEST_CASE("formats/safetensors/open_time: a LLaMA-7B fp16 checkpoint (13.5 GB, sparse) opens in well under a second") {
    // 291 tensors of LLaMA-7B's shapes; the data section is a hole in a sparse file, so this
    // costs no disk and shows that opening reads only the header.
    test::scratch_dir dir;
    const int64_t d = 4096, f = 11008, vocab = 32000;
    json header = json::object();
    uint64_t off = 0;
    auto add = [&](const std::string &name, std::vector<int64_t> shape) {
        uint64_t n = 2;
        for (int64_t s : shape) n *= static_cast<uint64_t>(s);
        header[name] = entry("F16", shape, off, off + n);
        off += n;
    };
    add("model.embed_tokens.weight", {vocab, d});
    for (int l = 0; l < 32; ++l) {
        const std::string p = "model.layers." + std::to_string(l) + ".";
        for (const char *w : {"q_proj", "k_proj", "v_proj", "o_proj"}) add(p + "self_attn." + w + ".weight", {d, d});
        add(p + "mlp.gate_proj.weight", {f, d});
        add(p + "mlp.up_proj.weight", {f, d});
        add(p + "mlp.down_proj.weight", {d, f});
        add(p + "input_layernorm.weight", {d});
        add(p + "post_attention_layernorm.weight", {d});
    }
    add("model.norm.weight", {d});
    add("lm_head.weight", {vocab, d});
    const std::string head = test::safetensors_bytes(header, "");
    const auto path = dir.path() / "model.safetensors";
    {
        std::ofstream out(path, std::ios::binary);
        out << head;
    }
    try {
        fs::resize_file(path, head.size() + off);
    } catch (const fs::filesystem_error &e) {
        MESSAGE("skipped: the temp filesystem cannot hold a 13.5 GB sparse file: " << e.what());
        return;
    }
    REQUIRE(fs::file_size(path) == head.size() + off);

    const auto t0 = std::chrono::steady_clock::now();
    safetensors_checkpoint c(dir.path());
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    MESSAGE("7B fp16 safetensors (" << off / 1e9 << " GB, " << c.tensors().size() << " tensors) opened in " << ms << " ms");
    CHECK(c.tensors().size() == 291);
    CHECK(c.tensors().at("model.layers.31.mlp.down_proj.weight").shape == std::vector<int64_t>{4096, 11008});
    CHECK(ms < 1000.0); // typically a few ms; a reader that touched the data would take seconds
}

} // TEST_SUITE
