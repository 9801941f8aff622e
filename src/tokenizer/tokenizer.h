// Tokenizers (torch-free): text <-> token ids for the models qbench loads.
//
//   sentencepiece_tokenizer  SentencePiece BPE, LLaMA-1/2 (tokenizer.model, or a GGUF "llama" vocab)
//   llama2c_tokenizer        llama2.c's tokenizer.bin and run.c's encode/decode (stories*.bin)
//   byte_bpe_tokenizer       GPT-2-style byte-level BPE: HF tokenizer.json, or a GGUF "gpt2" vocab
//                            (SmolLM2, LLaMA-3 pre-tokenizers)
//
// Each one is built from plain vectors (what a GGUF file carries), with a loader for its own
// file format beside it. Encodings are checked id for id against the reference implementations
// (the `sentencepiece` and `tokenizers` Python packages, llama2.c's run.c): tests/tokenizer/.
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace qb {

class tokenizer {
public:
    virtual ~tokenizer() = default;

    // Token ids of `text` (UTF-8). With add_bos, bos_id() comes first (if the vocabulary has one).
    virtual std::vector<int32_t> encode(std::string_view text, bool add_bos) const = 0;
    std::vector<int32_t> encode(std::string_view text) const { return encode(text, add_bos_default()); }

    // Text of a sequence of ids, as the reference library's decode returns it. Throws qb::error
    // for an id outside [0, vocab_size()).
    virtual std::string decode(std::span<const int32_t> ids) const = 0;

    // The vocabulary entry of one id as stored ("▁the", "Ġthe", "<0x0A>", "<|im_start|>").
    virtual std::string token_text(int32_t id) const = 0;

    virtual int32_t vocab_size() const = 0;
    virtual std::string kind() const = 0; // "sentencepiece-bpe", "llama2c", "byte-bpe"

    int32_t bos_id() const { return bos_id_; } // -1: none
    int32_t eos_id() const { return eos_id_; } // -1: none
    bool add_bos_default() const { return add_bos_default_; }

protected:
    void check_id(int32_t id) const; // throws qb::error naming the id, the range and kind()
    // For the constructors, once vocab_size() answers: -1 means none; add_bos only with a bos.
    void set_special_tokens(int32_t bos, int32_t eos, bool add_bos);

    int32_t bos_id_ = -1;
    int32_t eos_id_ = -1;
    bool add_bos_default_ = false;
};

// By file: *.model (SentencePiece ModelProto), *.bin (llama2.c tokenizer), *.json (HF
// tokenizer.json, byte-level BPE). Throws qb::error naming the file and what is wrong with it.
std::unique_ptr<tokenizer> load_tokenizer(const std::filesystem::path &file);

// The tokenizer.ggml.* keys of a GGUF file, as the GGUF reader hands them over.
struct gguf_tokenizer_metadata {
    std::string model;                 // tokenizer.ggml.model: "llama" (SentencePiece) or "gpt2" (byte-level BPE)
    std::string pre;                   // tokenizer.ggml.pre (gpt2): "smollm", "llama-bpe", "gpt2", ...
    std::vector<std::string> tokens;   // tokenizer.ggml.tokens
    std::vector<float> scores;         // tokenizer.ggml.scores (llama)
    std::vector<int32_t> token_types;  // tokenizer.ggml.token_type: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte
    std::vector<std::string> merges;   // tokenizer.ggml.merges (gpt2): "Ġ t", rank order
    int32_t bos_id = -1;               // tokenizer.ggml.bos_token_id
    int32_t eos_id = -1;               // tokenizer.ggml.eos_token_id
    std::optional<bool> add_bos;       // tokenizer.ggml.add_bos_token (absent: llama true, gpt2 false)
    std::optional<bool> add_space_prefix; // tokenizer.ggml.add_space_prefix (absent: llama true, gpt2 false)
};

// Throws qb::error for a tokenizer model or pre-tokenizer qbench does not implement, naming the
// value and the supported ones.
std::unique_ptr<tokenizer> tokenizer_from_gguf(const gguf_tokenizer_metadata &metadata);

// A whole tokenizer file (they are small); throws qb::error naming the path.
std::vector<uint8_t> read_tokenizer_file(const std::filesystem::path &file);

} // namespace qb
