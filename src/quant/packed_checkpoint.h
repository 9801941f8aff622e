// Packed quantized checkpoints (.qbq): true low-bit storage of a quantized llama_model.
// Layout and fields: docs/packed-format.md. In short:
//
//   [0, 8)    magic "QBQPACK\0"
//   [8, 12)   u32 format version (packed_format_version), little-endian
//   [12, 16)  u32 reserved, 0
//   [16, 24)  u64 length H of the header
//   [24, 24+H) header: UTF-8 JSON (metadata, architecture, tensor table with byte offsets)
//   data      from the next multiple of 64; every blob starts at a multiple of 64 within it
//
// A quantized linear stores its b-bit codes bit-packed (code + 2^(b-1) as an unsigned b-bit field,
// least significant bit first: 6-bit codes are 4 values in 3 bytes, no int8 containers), its
// scales as fp16 when they are fp16 values (all of FlexQ's are) else fp32, and for asymmetric
// formats its zero points packed like the codes. Everything else (embeddings, norms, lm_head,
// biases, linears left unquantized) is stored as raw tensors in their dtype. Reading it back gives
// codes, scales and zero points bit-identical to what was written.
#pragma once
#include "core/json.h"
#include "model/formats.h"
#include "model/llama.h"

#include <ATen/core/Tensor.h>

#include <filesystem>

namespace qb {

inline constexpr uint32_t packed_format_version = 1;

// Bytes one quantized [n, k] linear takes in the file (excluding alignment padding).
struct packed_linear_size {
    int64_t code_bytes = 0, scale_bytes = 0, zero_point_bytes = 0;
    int64_t total() const { return code_bytes + scale_bytes + zero_point_bytes; }
};
// group_size 0 = one scale per row; bytes_per_scale 2 (fp16) or 4 (fp32).
packed_linear_size packed_linear_bytes(int64_t n, int64_t k, int bits, int64_t group_size, bool symmetric, int bytes_per_scale);

// 2 when every scale of the weight is an fp16 value (stored losslessly as fp16), else 4.
int stored_scale_bytes(const quantized_weight &w);

// Bit packing of integer codes in [-2^(b-1), 2^(b-1)) (int8 container, any shape) into
// ceil(numel * bits / 8) bytes (uint8, on the codes' device), and back. LibTorch ops: run on
// the GPU when the codes are there.
at::Tensor pack_codes(const at::Tensor &codes, int bits);
at::Tensor unpack_codes(const at::Tensor &bytes, int bits, int64_t count); // int8 [count]

// What the writer reports: bytes, bits per linear weight (codes + scales + zero points), counts.
struct packed_write_summary {
    int64_t file_bytes = 0;
    int64_t linear_bytes = 0;       // packed codes, scales and zero points of quantized linears
    int64_t linear_weights = 0;     // their parameters
    int64_t other_bytes = 0;        // raw tensors (embeddings, norms, head, unquantized linears)
    double bits_per_linear_weight() const { return linear_weights ? 8.0 * double(linear_bytes) / double(linear_weights) : 0.0; }
    json to_json() const;
};

// Writes `model` (quantized linears packed, the rest raw). `metadata` goes into the header as is
// (method, options, source model identity, ...); the writer adds the qbench version and commit.
packed_write_summary write_packed_checkpoint(const std::filesystem::path &file, const llama_model &model, const json &metadata);

// The header of a file (metadata, config, tensor table), without reading the data.
json read_packed_header(const std::filesystem::path &file);

// Reads a file back into a model on `device`: quantized linears get their qweight (codes, scales,
// zero points exactly as written, on the device) and activation settings, and `weight` = the
// dequantized weight in `dtype`; raw tensors are converted to `dtype`. inputs/identity name the
// file and its source model; no tokenizer (the format entry adds one when asked).
loaded_model read_packed_checkpoint(const std::filesystem::path &file, at::Device device, at::ScalarType dtype);

// The model format `packed` (src/model/formats.cpp): options path (absolute, pkg:, or relative to
// the data directory), tokenizer (optional file, same rules), name.
loaded_model load_packed_model(const json &options, const model_load_context &ctx);

} // namespace qb
