// A torch-free view of one tensor stored in a model file (safetensors, GGUF, llama2.c), and the
// conversions of any supported storage type to float32 / fp16 / bf16 in a caller's buffer.
//
// Shapes are row-major and outermost first, as the model code indexes them: a linear weight is
// [N, K] with K contiguous. (GGUF writes its dims innermost first; its reader reverses them.)
// Quantized types (ggml block formats) pack the innermost dimension in blocks of
// block_elems values, so K must be a multiple of it.
#pragma once
#include "core/status.h"

#include <bit>
#include <map>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace qb {

enum class tensor_dtype : uint8_t {
    f32,
    f16,
    bf16,
    q4_0, // ggml block formats (ggml-common.h): 32 values per block, one fp16 scale
    q4_1,
    q5_0,
    q5_1,
    q8_0,
    q2_k, // ggml k-quants: 256 values per super-block
    q3_k,
    q4_k,
    q5_k,
    q6_k,
};

struct tensor_dtype_traits {
    tensor_dtype dtype;
    const char *name;    // "F32", "Q4_1", "Q6_K": the spelling of GGUF/ggml and safetensors
    int64_t block_elems; // values per block (1 for plain types)
    int64_t block_bytes; // bytes per block
};

const tensor_dtype_traits &tensor_dtype_info(tensor_dtype dtype);
inline const char *tensor_dtype_name(tensor_dtype dtype) { return tensor_dtype_info(dtype).name; }
// "F32, F16, BF16, Q4_0, ..." for messages.
std::string tensor_dtype_list();

// "[576, 1536]"
std::string tensor_shape_text(std::span<const int64_t> shape);

// Bytes that `shape` takes in `dtype`; fails when a dimension is negative, the innermost one is
// not a multiple of the block, or the size overflows. `bytes` is written only on success.
status tensor_storage_bytes(tensor_dtype dtype, std::span<const int64_t> shape, size_t *bytes);

struct tensor_view {
    std::string name;
    tensor_dtype dtype = tensor_dtype::f32;
    std::vector<int64_t> shape;    // outermost first; [] is a scalar
    const uint8_t *data = nullptr; // into the file's mapping: valid while the reader lives
    size_t bytes = 0;

    int64_t numel() const;
    int64_t row_length() const { return shape.empty() ? 1 : shape.back(); } // innermost dim
    int64_t rows() const;                                                  // numel / row_length
};

// Conversions into a caller buffer of exactly the right size (numel, or n_rows * row_length).
// Quantized types are expanded as llama.cpp's reference dequantize_row_* (ggml-quants.c) does,
// bit for bit; fp16 / bf16 are widened exactly. Failures (wrong buffer size, rows out of
// range, misaligned block data) come back as a status naming the tensor and the values.
status tensor_to_f32(const tensor_view &t, std::span<float> out);
status tensor_rows_to_f32(const tensor_view &t, int64_t row_begin, int64_t n_rows, std::span<float> out);
// To fp16 / bf16 bit patterns: copies when the storage already is that type, otherwise through
// float32 with round-to-nearest-even (NaN stays NaN, quieted; overflow goes to +-inf).
status tensor_to_f16(const tensor_view &t, std::span<uint16_t> out);
status tensor_to_bf16(const tensor_view &t, std::span<uint16_t> out);
// The whole tensor as a new vector; throws qb::error with the status's reason.
std::vector<float> tensor_read_f32(const tensor_view &t);

// The tensors of one file (or of the shards of one checkpoint), in file order, with lookup.
class tensor_map {
public:
    explicit tensor_map(std::string source = {}) : source_(std::move(source)) {}
    // False (and nothing added) when a tensor of that name is already there.
    bool add(tensor_view t);
    const tensor_view *find(std::string_view name) const;
    // Throws qb::error: "tensor 'x' not found in <source> (272 tensors). Did you mean: y?"
    const tensor_view &at(std::string_view name) const;
    const std::vector<tensor_view> &all() const { return tensors_; }
    size_t size() const { return tensors_.size(); }
    const std::string &source() const { return source_; }

private:
    std::string source_;
    std::vector<tensor_view> tensors_;
    std::map<std::string, size_t, std::less<>> index_; // name -> position in tensors_
};

// ---------------------------------------------------------------------------------------------
// Scalar conversions. Branch-free integer forms (after Maratos' FP16 library, which ggml also
// uses when the CPU lacks F16C), so loops over them vectorize and need no lookup table.
// ---------------------------------------------------------------------------------------------
inline float fp16_to_f32(uint16_t h) {
    const uint32_t w = static_cast<uint32_t>(h) << 16;
    const uint32_t sign = w & 0x80000000u;
    const uint32_t two_w = w + w;
    // Normal and inf/NaN: move exponent+mantissa into place with a bias of 0xE0 << 23, then
    // scale by 2^-112 to correct it; exact since the result is representable.
    const float normalized = std::bit_cast<float>((two_w >> 4) + (0xE0u << 23)) * 0x1.0p-112f;
    // Subnormal: put the mantissa under a float of exponent 0.5 and subtract 0.5.
    const float denormalized = std::bit_cast<float>((two_w >> 17) | (126u << 23)) - 0.5f;
    // A mask rather than ?: so that loops over this function if-convert and vectorize.
    const uint32_t is_denormal = 0u - static_cast<uint32_t>(two_w < (1u << 27));
    const uint32_t bits = (std::bit_cast<uint32_t>(denormalized) & is_denormal) | (std::bit_cast<uint32_t>(normalized) & ~is_denormal);
    return std::bit_cast<float>(sign | bits);
}

inline uint16_t f32_to_fp16(float f) {
    // Rounding to nearest even is done by the FPU: adding a power of two that aligns the fp16
    // mantissa's last bit with the float's. Overflow scales to inf; NaN becomes 0x7E00.
    float base = (__builtin_fabsf(f) * 0x1.0p+112f) * 0x1.0p-110f;
    const uint32_t w = std::bit_cast<uint32_t>(f);
    const uint32_t shl1_w = w + w;
    const uint32_t sign = w & 0x80000000u;
    uint32_t bias = shl1_w & 0xFF000000u;
    if (bias < 0x71000000u) bias = 0x71000000u;
    base = std::bit_cast<float>((bias >> 1) + 0x07800000u) + base;
    const uint32_t bits = std::bit_cast<uint32_t>(base);
    const uint32_t nonsign = ((bits >> 13) & 0x00007C00u) + (bits & 0x00000FFFu);
    return static_cast<uint16_t>((sign >> 16) | (shl1_w > 0xFF000000u ? 0x7E00u : nonsign));
}

inline float bf16_to_f32(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

inline uint16_t f32_to_bf16(float f) {
    const uint32_t u = std::bit_cast<uint32_t>(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 64); // quiet NaN
    return static_cast<uint16_t>((u + (0x7fffu + ((u >> 16) & 1u))) >> 16);             // nearest even
}

// Little-endian loads from unaligned bytes (safetensors offsets need not be aligned).
inline uint16_t load_u16(const uint8_t *p) {
    uint16_t v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

} // namespace qb
