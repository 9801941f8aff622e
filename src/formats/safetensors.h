// Hugging Face safetensors checkpoints, read in place from a read-only mapping.
//
// File layout: u64 little-endian N, then N bytes of JSON header
//   {"__metadata__": {"k": "v"}, "name": {"dtype": "F16", "shape": [N, K], "data_offsets": [b, e]}, ...}
// then the data section; offsets are relative to its start. As the reference implementation
// does, the tensors must tile the data section exactly: no overlap, no hole, nothing after the
// last one. F32, F16 and BF16 are read; any other dtype is refused when the file is opened.
//
// A sharded checkpoint is a folder with model.safetensors.index.json ({"metadata": ...,
// "weight_map": {tensor: shard file}}); each shard is mapped once.
#pragma once
#include "core/json.h"
#include "formats/mapped_file.h"
#include "formats/tensor_view.h"

#include <filesystem>
#include <vector>

namespace qb {

// The reference reader's bound on the header (safetensors MAX_HEADER_SIZE): a larger length
// field means a corrupt or foreign file, not a big model.
constexpr uint64_t safetensors_max_header_bytes = 100'000'000;

class safetensors_file {
public:
    // Maps and validates one .safetensors file; throws qb::error naming the file, the tensor
    // and the expected vs found values.
    explicit safetensors_file(const std::filesystem::path &path);

    const tensor_map &tensors() const { return tensors_; }
    const json &metadata() const { return metadata_; } // "__metadata__" ({} when absent)
    const std::filesystem::path &path() const { return file_.path(); }
    uint64_t header_bytes() const { return header_bytes_; }

private:
    mapped_file file_;
    tensor_map tensors_;
    json metadata_ = json::object();
    uint64_t header_bytes_ = 0;
};

class safetensors_checkpoint {
public:
    // `path`: a folder (model.safetensors.index.json if present, else model.safetensors), an
    // index .json, or a single .safetensors file.
    explicit safetensors_checkpoint(const std::filesystem::path &path);

    // All tensors of all shards, with views into the shards' mappings.
    const tensor_map &tensors() const { return tensors_; }
    const std::vector<safetensors_file> &shards() const { return shards_; }
    const json &index_metadata() const { return index_metadata_; } // the index's "metadata" ({} if none)

private:
    std::vector<safetensors_file> shards_;
    tensor_map tensors_;
    json index_metadata_ = json::object();
};

// config.json of a Hugging Face checkpoint (`path`: the file or its folder), as parsed JSON.
// The keys a LLaMA-family loader reads are type-checked when present (hidden_size,
// intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads, vocab_size,
// max_position_embeddings, head_dim: integers; rms_norm_eps, rope_theta: numbers;
// tie_word_embeddings, attention_bias: booleans; rope_scaling: null or an object whose factor,
// low_freq_factor, high_freq_factor, original_max_position_embeddings are numbers); a wrong
// type throws qb::error naming the file, the key and the value found.
json hf_config_read(const std::filesystem::path &path);

} // namespace qb
