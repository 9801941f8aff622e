// GGUF (llama.cpp's model file, versions 2 and 3), read in place from a read-only mapping.
//
// Layout (little-endian): "GGUF", u32 version, u64 tensor_count, u64 kv_count; kv_count
// metadata entries (string key, u32 type, value); tensor_count tensor infos (string name, u32
// n_dims, u64 ne[n_dims] innermost first, u32 ggml type, u64 offset); padding to
// general.alignment (default 32); the data section, where each tensor's offset (relative to
// its start) is a multiple of the alignment. Strings are u64 length + bytes, arrays u32
// element type + u64 count + elements (nested arrays allowed).
//
// Tensor shapes are exposed outermost first: ne = [K, N] in the file is shape [N, K].
#pragma once
#include "core/status.h"
#include "formats/mapped_file.h"
#include "formats/tensor_view.h"

#include <filesystem>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace qb {

enum class gguf_type : uint32_t {
    u8 = 0,
    i8 = 1,
    u16 = 2,
    i16 = 3,
    u32 = 4,
    i32 = 5,
    f32 = 6,
    boolean = 7,
    string = 8,
    array = 9,
    u64 = 10,
    i64 = 11,
    f64 = 12,
};

// "uint32", "string", "array" (the names of gguf-py's GGUFValueType, lower case).
const char *gguf_type_name(gguf_type type);

// One metadata value. Scalars are widened into the member of their kind; arrays of fixed-size
// scalars stay in the file (array_data) and are converted by the typed getters.
struct gguf_value {
    gguf_type type = gguf_type::u8;
    uint64_t u = 0;  // u8, u16, u32, u64, bool
    int64_t i = 0;   // i8, i16, i32, i64
    double f = 0.0;  // f32, f64 (an f32 widened exactly)
    std::string str; // string
    gguf_type array_type = gguf_type::u8;
    uint64_t array_size = 0;
    const uint8_t *array_data = nullptr; // array of numbers or bools: array_size elements, packed
    std::vector<std::string> strings;    // array of strings
    std::vector<gguf_value> arrays;      // array of arrays

    // "uint32", or "array of string", "array of array"
    std::string type_text() const;
};

class gguf_file {
public:
    // Maps and validates the file; throws qb::error naming the file, what was being read
    // (key, tensor) and expected vs found.
    explicit gguf_file(const std::filesystem::path &path);

    uint32_t version() const { return version_; }
    const tensor_map &tensors() const { return tensors_; }
    uint64_t alignment() const { return alignment_; }
    uint64_t data_offset() const { return data_offset_; } // start of the data section in the file
    const std::filesystem::path &path() const { return file_.path(); }

    // Metadata in file order.
    const std::vector<std::pair<std::string, gguf_value>> &metadata() const { return metadata_; }
    const gguf_value *find(std::string_view key) const;
    bool has(std::string_view key) const { return find(key) != nullptr; }

    // Typed access. A missing key or a value of another kind throws qb::error naming the file,
    // the key, the type wanted and the type found. Integer getters take any integer type whose
    // value fits (a u8 or an i32 where a u32 is asked for); float getters take f32 or f64.
    std::string get_string(std::string_view key) const;
    uint32_t get_u32(std::string_view key) const;
    uint64_t get_u64(std::string_view key) const;
    int64_t get_i64(std::string_view key) const;
    float get_f32(std::string_view key) const;
    double get_f64(std::string_view key) const;
    bool get_bool(std::string_view key) const;
    std::vector<std::string> get_string_array(std::string_view key) const;
    std::vector<float> get_f32_array(std::string_view key) const;
    std::vector<int32_t> get_i32_array(std::string_view key) const;
    std::vector<int64_t> get_i64_array(std::string_view key) const;
    // The same with a default for an absent key (a present key of the wrong type still throws).
    uint32_t get_u32_or(std::string_view key, uint32_t fallback) const { return has(key) ? get_u32(key) : fallback; }
    float get_f32_or(std::string_view key, float fallback) const { return has(key) ? get_f32(key) : fallback; }
    bool get_bool_or(std::string_view key, bool fallback) const { return has(key) ? get_bool(key) : fallback; }
    std::string get_string_or(std::string_view key, std::string fallback) const {
        return has(key) ? get_string(key) : std::move(fallback);
    }

private:
    const gguf_value &require(std::string_view key, std::string_view wanted) const;
    [[noreturn]] void wrong_type(std::string_view key, std::string_view wanted, const gguf_value &v) const;

    mapped_file file_;
    uint32_t version_ = 0;
    uint64_t alignment_ = 32;
    uint64_t data_offset_ = 0;
    std::vector<std::pair<std::string, gguf_value>> metadata_;
    tensor_map tensors_;
};

// llama.cpp's convert_hf_to_gguf.py (and llama2.c's export, and Meta's original checkpoints)
// store the rows of q_proj / k_proj for interleaved RoPE, where each head's rotation pairs are
// rows (2i, 2i+1); Hugging Face LLaMA pairs rows (i, i + head_dim/2). The converter applies
//   w.reshape(n_head, 2, head_dim/2, K).swapaxes(1, 2).reshape(N, K)
// gguf_unpermute_qk_rows is its exact inverse (GGUF order -> HF order), in place on a float
// [n_rows, n_cols] matrix; gguf_permute_qk_rows is the converter's permutation itself. Use
// n_head = the number of query heads for q, of key/value heads for k. Fails (no change) when
// n_rows is not n_head times an even head_dim or the buffer size is not n_rows * n_cols.
status gguf_unpermute_qk_rows(std::span<float> w, int64_t n_rows, int64_t n_cols, int64_t n_head);
status gguf_permute_qk_rows(std::span<float> w, int64_t n_rows, int64_t n_cols, int64_t n_head);

} // namespace qb
