// llama2.c's tokenizer.bin and the encode/decode of its run.c (the stories* models).
//
// File: int32 max_token_length, then per token: float32 score, int32 length, bytes (no count:
// the model header has vocab_size; here the file is read to its end unless a size is given).
// The vocabulary is SentencePiece's with "▁" already turned into ' ', <s>/</s> stored as
// "\n<s>\n"/"\n</s>\n", and byte pieces <0x00>..<0xFF> at ids 3..258.
//
// encode (run.c): BOS (1) if asked; a dummy-prefix " " token unless the text is empty; each
// UTF-8 character (at most 4 bytes) looked up as a token, else its bytes as ids byte+3; then
// merge the adjacent pair whose concatenated text is a token of highest score (leftmost on ties;
// only scores above run.c's starting best of -1e10 count) until none is left. BOS takes part in
// the merges, as in run.c.
// decode (run.c): token text, a leading ' ' dropped right after BOS, <0xXX> -> that raw byte.
// BOS and EOS decode to nothing here (run.c never prints them).
#pragma once
#include "core/status.h"
#include "tokenizer/tokenizer.h"

#include <unordered_map>

namespace qb {

struct llama2c_vocab {
    std::vector<std::string> tokens;
    std::vector<float> scores;
    int32_t max_token_length = 0; // from the header; run.c sizes its merge buffer with it
};

// expected_vocab_size < 0: read tokens to the end of the file. Errors name the token index and
// the byte offset.
status parse_llama2c_tokenizer(std::span<const uint8_t> bytes, llama2c_vocab &out, int32_t expected_vocab_size = -1);

class llama2c_tokenizer final : public tokenizer {
public:
    // Throws qb::error unless ids 3..258 are the byte pieces <0x00>..<0xFF> and " " is a token.
    explicit llama2c_tokenizer(llama2c_vocab vocab);
    static std::unique_ptr<llama2c_tokenizer> load(const std::filesystem::path &file, int32_t vocab_size = -1);
    llama2c_tokenizer(const llama2c_tokenizer &) = delete; // the index holds views into vocab_
    llama2c_tokenizer &operator=(const llama2c_tokenizer &) = delete;

    using tokenizer::encode;
    // Throws qb::error if text contains a NUL byte (run.c's C string would end there).
    std::vector<int32_t> encode(std::string_view text, bool add_bos) const override;
    std::string decode(std::span<const int32_t> ids) const override;
    std::string token_text(int32_t id) const override;
    int32_t vocab_size() const override { return int32_t(vocab_.tokens.size()); }
    std::string kind() const override { return "llama2c"; }

private:
    int32_t lookup(std::string_view text) const; // -1 if not a token

    llama2c_vocab vocab_;
    std::unordered_map<std::string_view, int32_t> index_; // text -> lowest id with that text
    int32_t space_id_ = -1;
};

} // namespace qb
