// tensor_view: the dtype table, storage sizes, fp16/bf16 conversions, conversion error paths.
// (Dequantization of each ggml type is checked against gguf-py in test_gguf.cpp.)
#include "format_test_util.h"
#include "formats/ggml_quants.h"
#include "formats/tensor_view.h"

#include <doctest/doctest.h>

#include <cmath>
#include <numeric>

using namespace qb;

namespace {
// fp16 value from its fields, written independently of fp16_to_f32 (ldexp on the integer mantissa).
float fp16_reference(uint16_t h) {
    const int sign = h >> 15, exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
    float v;
    if (exp == 0) v = std::ldexp(static_cast<float>(mant), -24); // subnormal: mant * 2^-24
    else if (exp == 31) v = mant ? NAN : INFINITY;
    else v = std::ldexp(static_cast<float>(1024 + mant), exp - 25);
    return sign ? -v : v;
}

tensor_view view_of(const std::string &name, tensor_dtype dtype, std::vector<int64_t> shape, const std::string &bytes) {
    return {name, dtype, std::move(shape), reinterpret_cast<const uint8_t *>(bytes.data()), bytes.size()};
}
} // namespace

TEST_SUITE("formats") {

TEST_CASE("formats/dtype_table: block sizes are ggml's") {
    CHECK(tensor_dtype_info(tensor_dtype::f32).block_bytes == 4);
    CHECK(tensor_dtype_info(tensor_dtype::bf16).block_bytes == 2);
    CHECK(tensor_dtype_info(tensor_dtype::q8_0).block_bytes == 34);
    CHECK(tensor_dtype_info(tensor_dtype::q4_0).block_bytes == 18);
    CHECK(tensor_dtype_info(tensor_dtype::q4_1).block_bytes == 20);
    CHECK(tensor_dtype_info(tensor_dtype::q6_k).block_elems == 256);
    CHECK(tensor_dtype_info(tensor_dtype::q6_k).block_bytes == 210);
    CHECK(std::string(tensor_dtype_name(tensor_dtype::q4_k)) == "Q4_K");
    for (int d = 0; d <= static_cast<int>(tensor_dtype::q6_k); ++d)
        CHECK(tensor_dtype_info(static_cast<tensor_dtype>(d)).dtype == static_cast<tensor_dtype>(d));
    CHECK(tensor_dtype_list() == "F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K");
}

TEST_CASE("formats/storage_bytes: sizes, block multiples, negative and overflowing shapes") {
    size_t bytes = 0;
    const std::vector<int64_t> w{576, 1536};
    REQUIRE(tensor_storage_bytes(tensor_dtype::q4_1, w, &bytes));
    CHECK(bytes == 576 * 1536 / 32 * 20); // SmolLM2's ffn_gate: 552960 bytes in the file
    REQUIRE(tensor_storage_bytes(tensor_dtype::f16, std::vector<int64_t>{}, &bytes));
    CHECK(bytes == 2); // a scalar
    REQUIRE(tensor_storage_bytes(tensor_dtype::f32, std::vector<int64_t>{0, 5}, &bytes));
    CHECK(bytes == 0);

    auto st = tensor_storage_bytes(tensor_dtype::q6_k, std::vector<int64_t>{4, 300}, &bytes);
    CHECK(st.code == status_code::unsupported_shape);
    CHECK(st.reason == "Q6_K packs rows in blocks of 256 values, but the row length (innermost dim of [4, 300]) is 300");
    st = tensor_storage_bytes(tensor_dtype::f32, std::vector<int64_t>{3, -1}, &bytes);
    CHECK(st.reason == "negative dimension in shape [3, -1]");
    st = tensor_storage_bytes(tensor_dtype::f32, std::vector<int64_t>{int64_t{1} << 40, int64_t{1} << 30}, &bytes);
    CHECK(st.reason == "shape [1099511627776, 1073741824] is too large");
}

TEST_CASE("formats/fp16_to_f32: all 65536 bit patterns equal the ldexp reference") {
    size_t bad = 0;
    for (uint32_t h = 0; h < 65536; ++h)
        if (!test::same_float(fp16_to_f32(static_cast<uint16_t>(h)), fp16_reference(static_cast<uint16_t>(h))) && ++bad < 5)
            MESSAGE("fp16 0x" << std::hex << h << std::dec << ": got " << fp16_to_f32(static_cast<uint16_t>(h)));
    CHECK(bad == 0);
    CHECK(fp16_to_f32(0x3C00) == 1.0f);
    CHECK(fp16_to_f32(0x0001) == std::ldexp(1.0f, -24)); // smallest subnormal
    CHECK(std::signbit(fp16_to_f32(0x8000)));
}

TEST_CASE("formats/f32_to_fp16: exact values round-trip, midpoints go to even, overflow to inf") {
    size_t bad = 0;
    for (uint32_t h = 0; h < 65536; ++h) {
        const float f = fp16_to_f32(static_cast<uint16_t>(h));
        if (std::isnan(f)) {
            CHECK(std::isnan(fp16_to_f32(f32_to_fp16(f))));
            continue;
        }
        if (f32_to_fp16(f) != h) ++bad;
    }
    CHECK(bad == 0);
    // Between consecutive positive finite fp16 values a < b the float midpoint is exact; it
    // rounds to the one with an even mantissa, and one float ulp either side rounds to the nearer.
    size_t bad_ties = 0;
    for (uint16_t h = 0; h < 0x7BFF; ++h) {
        const float a = fp16_to_f32(h), b = fp16_to_f32(static_cast<uint16_t>(h + 1));
        const float mid = (a + b) / 2;
        const uint16_t even = (h % 2 == 0) ? h : static_cast<uint16_t>(h + 1);
        if (f32_to_fp16(mid) != even || f32_to_fp16(std::nextafter(mid, 0.0f)) != h ||
            f32_to_fp16(std::nextafter(mid, INFINITY)) != h + 1)
            ++bad_ties;
    }
    CHECK(bad_ties == 0);
    CHECK(f32_to_fp16(65504.0f) == 0x7BFF);
    CHECK(f32_to_fp16(65519.99f) == 0x7BFF); // below the midpoint to the next (virtual) step
    CHECK(f32_to_fp16(65520.0f) == 0x7C00);  // the midpoint rounds to even: inf
    CHECK(f32_to_fp16(-1e9f) == 0xFC00);
    CHECK(f32_to_fp16(std::ldexp(1.0f, -26)) == 0x0000); // below half the smallest subnormal
}

TEST_CASE("formats/f32_to_bf16: exact values round-trip, ties to even, NaN stays NaN") {
    size_t bad = 0;
    for (uint32_t b = 0; b < 65536; ++b) {
        const float f = bf16_to_f32(static_cast<uint16_t>(b));
        if (std::isnan(f)) continue;
        if (f32_to_bf16(f) != b) ++bad;
    }
    CHECK(bad == 0);
    CHECK(f32_to_bf16(std::bit_cast<float>(0x3F808000u)) == 0x3F80); // tie, 0x3F80 is even
    CHECK(f32_to_bf16(std::bit_cast<float>(0x3F818000u)) == 0x3F82); // tie, odd -> up
    CHECK(f32_to_bf16(std::bit_cast<float>(0x3F808001u)) == 0x3F81);
    CHECK(std::isnan(bf16_to_f32(f32_to_bf16(std::bit_cast<float>(0x7F800001u))))); // signalling NaN is quieted, not inf
}

TEST_CASE("formats/tensor_to_f32: rows, f16/bf16 targets, and errors that name the tensor") {
    // A q8_0 tensor [3, 32]: block r has scale 0.5 * (r + 1) and q[j] = j - 16.
    std::string bytes;
    for (int r = 0; r < 3; ++r) {
        test::put<uint16_t>(bytes, f32_to_fp16(0.5f * static_cast<float>(r + 1)));
        for (int j = 0; j < 32; ++j) test::put<int8_t>(bytes, static_cast<int8_t>(j - 16));
    }
    const auto t = view_of("w", tensor_dtype::q8_0, {3, 32}, bytes);
    CHECK(t.numel() == 96);
    CHECK(t.rows() == 3);
    const auto all = tensor_read_f32(t);
    for (int r = 0; r < 3; ++r)
        for (int j = 0; j < 32; ++j) CHECK(all[static_cast<size_t>(r * 32 + j)] == 0.5f * static_cast<float>(r + 1) * static_cast<float>(j - 16));

    std::vector<float> row(32);
    REQUIRE(tensor_rows_to_f32(t, 2, 1, row));
    CHECK(std::equal(row.begin(), row.end(), all.begin() + 64));

    // fp16 output: every value here is exact in fp16.
    std::vector<uint16_t> h(96);
    REQUIRE(tensor_to_f16(t, h));
    for (size_t i = 0; i < 96; ++i) CHECK(fp16_to_f32(h[i]) == all[i]);
    std::vector<uint16_t> b(96);
    REQUIRE(tensor_to_bf16(t, b));
    CHECK(bf16_to_f32(b[95]) == 1.5f * 15.0f);

    std::vector<float> wrong(95);
    auto st = tensor_to_f32(t, wrong);
    CHECK(st.code == status_code::invalid_argument);
    CHECK(st.reason == "tensor 'w' [3, 32]: output buffer has 95 values, expected 96 (3 rows of 32)");
    st = tensor_rows_to_f32(t, 2, 2, row);
    CHECK(st.reason == "tensor 'w' [3, 32]: rows [2, 4) out of range (it has 3 rows)");
    auto short_view = t;
    short_view.bytes -= 1;
    st = tensor_to_f32(short_view, std::span<float>(wrong.data(), 96 - 1));
    CHECK(st.reason.find("tensor 'w' Q8_0 [3, 32]: view holds 101 bytes") == 0);
    CHECK(st.reason.find("the shape needs 102") != std::string::npos);

    // Block structs are read in place: their fp16 fields want 2-byte alignment.
    std::string shifted = "x" + bytes;
    auto odd = view_of("w", tensor_dtype::q8_0, {3, 32}, shifted);
    odd.data += 1;
    odd.bytes = bytes.size();
    REQUIRE(reinterpret_cast<uintptr_t>(odd.data) % 2 != 0); // std::string storage is at least 8-aligned
    std::vector<float> out(96);
    st = tensor_to_f32(odd, out);
    CHECK(st.reason.find("tensor 'w' Q8_0: block data at 0x") == 0);
    CHECK(st.reason.find("is not 2-byte aligned") != std::string::npos);
    CHECK_THROWS_WITH_AS(tensor_read_f32(short_view), doctest::Contains("view holds 101 bytes"), qb::error);
}

TEST_CASE("formats/tensor_to_f16: an f16 tensor is copied bit for bit, f32 is rounded to nearest even") {
    const std::vector<uint16_t> src{0x7E01, 0x0001, 0xFBFF, 0x3C00}; // a NaN payload survives the copy
    const auto bytes = test::bytes_of(src);
    std::vector<uint16_t> out(4);
    REQUIRE(tensor_to_f16(view_of("h", tensor_dtype::f16, {4}, bytes), out));
    CHECK(out == src);

    const std::vector<float> f{1.0f + std::ldexp(1.0f, -11), 1.0f + 3 * std::ldexp(1.0f, -11), 70000.0f, -0.0f};
    const auto fbytes = test::bytes_of(f);
    REQUIRE(tensor_to_f16(view_of("f", tensor_dtype::f32, {2, 2}, fbytes), out));
    CHECK(out == std::vector<uint16_t>{0x3C00, 0x3C02, 0x7C00, 0x8000});
}

TEST_CASE("formats/tensor_map: lookup, duplicates, and a not-found message with suggestions") {
    tensor_map m("model.gguf");
    CHECK(m.add({"blk.0.attn_q.weight", tensor_dtype::f32, {1}, nullptr, 4}));
    CHECK(m.add({"blk.0.attn_k.weight", tensor_dtype::f32, {1}, nullptr, 4}));
    CHECK_FALSE(m.add({"blk.0.attn_q.weight", tensor_dtype::f16, {1}, nullptr, 2}));
    CHECK(m.size() == 2);
    CHECK(m.at("blk.0.attn_k.weight").name == "blk.0.attn_k.weight");
    CHECK(m.find("nope") == nullptr);
    CHECK_THROWS_WITH_AS(m.at("blk.0.attn_v.weight"),
                         "tensor 'blk.0.attn_v.weight' not found in model.gguf (2 tensors). Did you mean: blk.0.attn_q.weight, "
                         "blk.0.attn_k.weight?",
                         qb::error);
}

} // TEST_SUITE
