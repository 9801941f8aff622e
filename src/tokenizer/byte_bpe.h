// Byte-level BPE (GPT-2 style) as HF tokenizers runs it for SmolLM2 and LLaMA-3, from a
// tokenizer.json or from a GGUF "gpt2" vocabulary (tokens + ranked merges + pre-tokenizer name).
//
// Encoding: added/special tokens are matched first (leftmost, longest; lstrip/rstrip eat
// neighbouring whitespace); the text between them goes through the pre-tokenizer steps (regex
// split, Digits, ByteLevel: bytes -> the printable stand-ins of GPT-2's bytes_to_unicode); each
// piece is merged by rank (lowest first, leftmost on ties), or taken whole when it is a token and
// ignore_merges is set (LLaMA-3).
// Decoding: token texts concatenated, stand-in characters mapped back to bytes (a token with a
// character outside the table is copied as is, like an added token "<|im_start|>"), malformed
// UTF-8 replaced by U+FFFD per maximal subpart (Rust's from_utf8_lossy). Special tokens are kept
// (HF decode with skip_special_tokens=False).
// Not implemented (refused when loading): normalizers, other models (WordPiece, Unigram), BPE
// dropout / continuing_subword_prefix / end_of_word_suffix / byte_fallback, single_word added
// tokens, Split patterns other than GPT-2's and LLaMA-3's.
#pragma once
#include "core/status.h"
#include "tokenizer/pretokenize.h"
#include "tokenizer/tokenizer.h"

#include <array>
#include <deque>
#include <unordered_map>

namespace qb {

struct bpe_pretokenizer_step {
    enum class kind { split, digits, byte_level } type = kind::byte_level;
    split_regex regex = split_regex::gpt2; // split
    bool individual_digits = false;        // digits
    bool add_prefix_space = false;         // byte_level: ' ' before every piece that lacks one
    bool use_regex = true;                 // byte_level: split with GPT-2's regex first
};

struct bpe_added_token {
    std::string content;
    int32_t id = -1;
    bool special = true;
    bool lstrip = false, rstrip = false; // the match also takes the whitespace before / after it
    bool normalized = false;             // matched in a second pass, on the text between the others
};

struct byte_bpe_vocab {
    std::vector<std::string> tokens;                          // id -> text in the bytes_to_unicode alphabet ("Ġthe")
    std::vector<std::pair<std::string, std::string>> merges;  // rank order: merges[0] applies first
    std::vector<bpe_added_token> added;
    std::vector<bpe_pretokenizer_step> pretokenizer;          // ends with a byte_level step
    bool ignore_merges = false;                               // a piece that is a token is not merged (LLaMA-3)
    int32_t bos_id = -1, eos_id = -1, unk_id = -1;
    bool add_bos = false;
};

// llama.cpp's tokenizer.ggml.pre names (llama-vocab.cpp) -> pre-tokenizer steps and ignore_merges.
// Implemented: gpt2 (and "default"), llama-bpe / llama3, and the Digits + GPT-2 family: smollm,
// starcoder, refact, command-r, codeshell, exaone, minerva.
status byte_bpe_pretokenizer_for(std::string_view pre, std::vector<bpe_pretokenizer_step> &steps, bool &ignore_merges);

// A HF tokenizer.json (model.type BPE with a ByteLevel pre-tokenizer). bos/add_bos come from a
// TemplateProcessing post-processor that puts one special token before $A; eos stays -1 (it
// lives in tokenizer_config.json). Errors name the JSON key.
status parse_tokenizer_json(std::string_view json_text, byte_bpe_vocab &out);

class byte_bpe_tokenizer final : public tokenizer {
public:
    // Throws qb::error for an inconsistent vocabulary (duplicate tokens, a merge of unknown tokens
    // or into an unknown token, ids out of range, no ByteLevel step).
    explicit byte_bpe_tokenizer(byte_bpe_vocab vocab);
    // tokenizer.json; a tokenizer_config.json beside it supplies eos_token (and bos_token) names.
    static std::unique_ptr<byte_bpe_tokenizer> load_json(const std::filesystem::path &file);
    byte_bpe_tokenizer(const byte_bpe_tokenizer &) = delete; // the indexes hold views into vocab_
    byte_bpe_tokenizer &operator=(const byte_bpe_tokenizer &) = delete;

    using tokenizer::encode;
    std::vector<int32_t> encode(std::string_view text, bool add_bos) const override;
    std::string decode(std::span<const int32_t> ids) const override;
    std::string token_text(int32_t id) const override;
    int32_t vocab_size() const override { return int32_t(vocab_.tokens.size()); }
    std::string kind() const override { return "byte-bpe"; }

    const byte_bpe_vocab &vocab() const { return vocab_; }
    // The pieces BPE runs on, in raw bytes (for tests and debugging).
    std::vector<std::string> pretokenize(std::string_view text) const;

private:
    struct segment {
        std::string_view text;
        int32_t added_id; // -1: ordinary text
    };
    std::vector<segment> split_added(std::string_view text) const;
    // added tokens and pre-tokenized pieces, in order; storage keeps pieces built with a prefix space
    std::vector<segment> pieces_of(std::string_view text, std::deque<std::string> &storage) const;
    void pretokenize_segment(std::string_view text, std::deque<std::string> &storage, std::vector<std::string_view> &pieces) const;
    void encode_piece(std::string_view piece, std::vector<int32_t> &ids) const;

    byte_bpe_vocab vocab_;
    std::unordered_map<std::string_view, int32_t> token_ids_;
    std::unordered_map<uint64_t, std::pair<int32_t, int32_t>> merge_ranks_; // (left id, right id) -> (rank, merged id)
    std::array<int32_t, 256> byte_token_{};                                // byte -> id of its one-character token, -1 if none
    std::array<std::vector<const bpe_added_token *>, 256> added_raw_, added_normalized_; // by first byte, longest first
};

} // namespace qb
