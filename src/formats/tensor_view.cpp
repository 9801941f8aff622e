#include "formats/tensor_view.h"

#include "core/error.h"
#include "core/text.h"
#include "formats/ggml_quants.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <array>

namespace qb {

static_assert(std::endian::native == std::endian::little,
              "model files are little-endian and are read in place: a big-endian host would need byte swaps");

namespace {

constexpr std::array<tensor_dtype_traits, 13> dtype_table{{
    {tensor_dtype::f32, "F32", 1, 4},
    {tensor_dtype::f16, "F16", 1, 2},
    {tensor_dtype::bf16, "BF16", 1, 2},
    {tensor_dtype::q4_0, "Q4_0", ggml::qk4_0, sizeof(ggml::block_q4_0)},
    {tensor_dtype::q4_1, "Q4_1", ggml::qk4_1, sizeof(ggml::block_q4_1)},
    {tensor_dtype::q5_0, "Q5_0", ggml::qk5_0, sizeof(ggml::block_q5_0)},
    {tensor_dtype::q5_1, "Q5_1", ggml::qk5_1, sizeof(ggml::block_q5_1)},
    {tensor_dtype::q8_0, "Q8_0", ggml::qk8_0, sizeof(ggml::block_q8_0)},
    {tensor_dtype::q2_k, "Q2_K", ggml::qk_k, sizeof(ggml::block_q2_k)},
    {tensor_dtype::q3_k, "Q3_K", ggml::qk_k, sizeof(ggml::block_q3_k)},
    {tensor_dtype::q4_k, "Q4_K", ggml::qk_k, sizeof(ggml::block_q4_k)},
    {tensor_dtype::q5_k, "Q5_K", ggml::qk_k, sizeof(ggml::block_q5_k)},
    {tensor_dtype::q6_k, "Q6_K", ggml::qk_k, sizeof(ggml::block_q6_k)},
}};

// Rows are converted in chunks through this much float32 scratch when the target is fp16/bf16.
constexpr int64_t convert_chunk_values = 4096;

template <class block>
void dequantize_blocks(const uint8_t *data, float *out, int64_t n, void (*row)(const block *, float *, int64_t)) {
    row(reinterpret_cast<const block *>(data), out, n);
}

// Values [first, first + n) of `t` into out; first and n are multiples of the block size.
void expand_f32(const tensor_view &t, int64_t first, int64_t n, float *__restrict out) {
    const auto &info = tensor_dtype_info(t.dtype);
    const uint8_t *src = t.data + static_cast<size_t>(first / info.block_elems * info.block_bytes);
    switch (t.dtype) {
    case tensor_dtype::f32: std::memcpy(out, src, static_cast<size_t>(n) * 4); return;
    case tensor_dtype::f16:
        for (int64_t i = 0; i < n; ++i) out[i] = fp16_to_f32(load_u16(src + 2 * i));
        return;
    case tensor_dtype::bf16:
        for (int64_t i = 0; i < n; ++i) out[i] = bf16_to_f32(load_u16(src + 2 * i));
        return;
    case tensor_dtype::q4_0: return dequantize_blocks(src, out, n, ggml::dequantize_row_q4_0);
    case tensor_dtype::q4_1: return dequantize_blocks(src, out, n, ggml::dequantize_row_q4_1);
    case tensor_dtype::q5_0: return dequantize_blocks(src, out, n, ggml::dequantize_row_q5_0);
    case tensor_dtype::q5_1: return dequantize_blocks(src, out, n, ggml::dequantize_row_q5_1);
    case tensor_dtype::q8_0: return dequantize_blocks(src, out, n, ggml::dequantize_row_q8_0);
    case tensor_dtype::q2_k: return dequantize_blocks(src, out, n, ggml::dequantize_row_q2_k);
    case tensor_dtype::q3_k: return dequantize_blocks(src, out, n, ggml::dequantize_row_q3_k);
    case tensor_dtype::q4_k: return dequantize_blocks(src, out, n, ggml::dequantize_row_q4_k);
    case tensor_dtype::q5_k: return dequantize_blocks(src, out, n, ggml::dequantize_row_q5_k);
    case tensor_dtype::q6_k: return dequantize_blocks(src, out, n, ggml::dequantize_row_q6_k);
    }
}

// The checks every conversion shares: the view is consistent and the output has `expected` slots.
status check_view(const tensor_view &t, int64_t row_begin, int64_t n_rows, size_t out_size) {
    size_t bytes = 0;
    if (auto st = tensor_storage_bytes(t.dtype, t.shape, &bytes); !st)
        return status::failure(st.code, fmt::format("tensor '{}': {}", t.name, st.reason));
    if (bytes != t.bytes || (bytes > 0 && t.data == nullptr))
        return status::failure(status_code::invalid_argument,
                               fmt::format("tensor '{}' {} {}: view holds {} bytes at {}, the shape needs {}", t.name,
                                           tensor_dtype_name(t.dtype), tensor_shape_text(t.shape), t.bytes,
                                           static_cast<const void *>(t.data), bytes));
    const int64_t rows = t.rows();
    if (row_begin < 0 || n_rows < 0 || row_begin > rows || n_rows > rows - row_begin)
        return status::failure(status_code::invalid_argument, fmt::format("tensor '{}' {}: rows [{}, {}) out of range (it has {} rows)",
                                                                          t.name, tensor_shape_text(t.shape), row_begin,
                                                                          row_begin + n_rows, rows));
    const size_t expected = static_cast<size_t>(n_rows * t.row_length());
    if (out_size != expected)
        return status::failure(status_code::invalid_argument,
                               fmt::format("tensor '{}' {}: output buffer has {} values, expected {} ({} rows of {})", t.name,
                                           tensor_shape_text(t.shape), out_size, expected, n_rows, t.row_length()));
    // Block structs hold fp16 fields; GGUF aligns tensor data to 32 bytes, so this only trips
    // on a hand-made view.
    if (tensor_dtype_info(t.dtype).block_elems > 1 && reinterpret_cast<uintptr_t>(t.data) % alignof(uint16_t) != 0)
        return status::failure(status_code::invalid_argument,
                               fmt::format("tensor '{}' {}: block data at {} is not 2-byte aligned", t.name,
                                           tensor_dtype_name(t.dtype), static_cast<const void *>(t.data)));
    return status::success();
}

template <class convert>
status convert_16(const tensor_view &t, std::span<uint16_t> out, tensor_dtype same, convert to_bits) {
    if (auto st = check_view(t, 0, t.rows(), out.size()); !st) return st;
    if (t.dtype == same) {
        std::memcpy(out.data(), t.data, out.size() * 2);
        return status::success();
    }
    // Through float32 in chunks that keep whole blocks, so no full-size float copy is made.
    const int64_t block = tensor_dtype_info(t.dtype).block_elems;
    const int64_t chunk = std::max(block, convert_chunk_values / block * block);
    std::vector<float> scratch(static_cast<size_t>(chunk));
    const auto n = static_cast<int64_t>(out.size());
    for (int64_t first = 0; first < n; first += chunk) {
        const int64_t len = std::min(chunk, n - first);
        expand_f32(t, first, len, scratch.data());
        for (int64_t i = 0; i < len; ++i) out[static_cast<size_t>(first + i)] = to_bits(scratch[static_cast<size_t>(i)]);
    }
    return status::success();
}

} // namespace

const tensor_dtype_traits &tensor_dtype_info(tensor_dtype dtype) { return dtype_table[static_cast<size_t>(dtype)]; }

std::string tensor_dtype_list() {
    std::vector<std::string> names;
    for (const auto &t : dtype_table) names.emplace_back(t.name);
    return join(names, ", ");
}

std::string tensor_shape_text(std::span<const int64_t> shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

status tensor_storage_bytes(tensor_dtype dtype, std::span<const int64_t> shape, size_t *bytes) {
    const auto &info = tensor_dtype_info(dtype);
    // Sizes stay below 2^62 so that byte offsets never overflow later arithmetic.
    constexpr uint64_t limit = uint64_t{1} << 62;
    uint64_t n = 1;
    for (int64_t d : shape) {
        if (d < 0)
            return status::failure(status_code::unsupported_shape, fmt::format("negative dimension in shape {}", tensor_shape_text(shape)));
        if (d != 0 && n > limit / static_cast<uint64_t>(d))
            return status::failure(status_code::unsupported_shape, fmt::format("shape {} is too large", tensor_shape_text(shape)));
        n *= static_cast<uint64_t>(d);
    }
    const int64_t row = shape.empty() ? 1 : shape.back();
    if (row % info.block_elems != 0)
        return status::failure(status_code::unsupported_shape,
                               fmt::format("{} packs rows in blocks of {} values, but the row length (innermost dim of {}) is {}",
                                           info.name, info.block_elems, tensor_shape_text(shape), row));
    const uint64_t blocks = n / static_cast<uint64_t>(info.block_elems);
    if (blocks > limit / static_cast<uint64_t>(info.block_bytes))
        return status::failure(status_code::unsupported_shape, fmt::format("shape {} is too large", tensor_shape_text(shape)));
    *bytes = static_cast<size_t>(blocks * static_cast<uint64_t>(info.block_bytes));
    return status::success();
}

int64_t tensor_view::numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
}

int64_t tensor_view::rows() const {
    const int64_t row = row_length();
    return row == 0 ? 0 : numel() / row;
}

status tensor_rows_to_f32(const tensor_view &t, int64_t row_begin, int64_t n_rows, std::span<float> out) {
    if (auto st = check_view(t, row_begin, n_rows, out.size()); !st) return st;
    if (!out.empty()) expand_f32(t, row_begin * t.row_length(), static_cast<int64_t>(out.size()), out.data());
    return status::success();
}

status tensor_to_f32(const tensor_view &t, std::span<float> out) { return tensor_rows_to_f32(t, 0, t.rows(), out); }

status tensor_to_f16(const tensor_view &t, std::span<uint16_t> out) {
    return convert_16(t, out, tensor_dtype::f16, [](float v) { return f32_to_fp16(v); });
}

status tensor_to_bf16(const tensor_view &t, std::span<uint16_t> out) {
    return convert_16(t, out, tensor_dtype::bf16, [](float v) { return f32_to_bf16(v); });
}

std::vector<float> tensor_read_f32(const tensor_view &t) {
    std::vector<float> out(static_cast<size_t>(std::max<int64_t>(t.numel(), 0)));
    if (auto st = tensor_to_f32(t, out); !st) throw error(st.reason);
    return out;
}

// ---------------------------------------------------------------------------------------------

bool tensor_map::add(tensor_view t) {
    if (!index_.emplace(t.name, tensors_.size()).second) return false;
    tensors_.push_back(std::move(t));
    return true;
}

const tensor_view *tensor_map::find(std::string_view name) const {
    auto it = index_.find(name);
    return it == index_.end() ? nullptr : &tensors_[it->second];
}

const tensor_view &tensor_map::at(std::string_view name) const {
    if (const auto *t = find(name)) return *t;
    std::vector<std::string> names;
    names.reserve(tensors_.size());
    for (const auto &t : tensors_) names.push_back(t.name);
    const auto near = closest_names(name, names);
    fail("tensor '{}' not found in {} ({} tensors){}", name, source_, tensors_.size(),
         near.empty() ? std::string() : fmt::format(". Did you mean: {}?", join(near, ", ")));
}

} // namespace qb
