// SentencePiece BPE, as LLaMA-1/2 use it: a tokenizer.model (ModelProto protobuf, parsed here
// without a protobuf library) or the same vocabulary from a GGUF file.
//
// Encoding follows sentencepiece's normalizer.cc + bpe_model.cc + sentencepiece_processor.cc:
// malformed UTF-8 -> U+FFFD per byte, optional removal of extra spaces, a dummy-prefix space,
// ' ' -> "▁" (U+2581); user-defined pieces are matched first and never merged; then the
// adjacent pair whose concatenation is a piece with the highest score is merged until none is;
// unknown symbols become <0xXX> byte pieces (byte_fallback) or one <unk> per run.
// Decoding: control pieces vanish, "▁" -> ' ', the first piece's leading "▁" is dropped, runs
// of byte pieces are assembled and malformed bytes become U+FFFD, <unk> reads unk_surface.
// Not implemented (refused when loading): unigram/word/char models, precompiled normalization
// charsmaps (nmt_nfkc ...), treat_whitespace_as_suffix.
#pragma once
#include "core/status.h"
#include "tokenizer/tokenizer.h"

#include <array>
#include <unordered_map>

namespace qb {

// ModelProto.SentencePiece.Type; GGUF's token_type uses the same numbers.
enum class spm_piece_type : uint8_t { normal = 1, unknown = 2, control = 3, user_defined = 4, unused = 5, byte = 6 };

struct spm_vocab {
    std::vector<std::string> pieces; // id -> piece ("▁the", "<0x0A>", "<s>")
    std::vector<float> scores;       // merge priority of NORMAL pieces (larger first)
    std::vector<spm_piece_type> types;
    // NormalizerSpec / TrainerSpec fields that change encoding; defaults are LLaMA's values.
    bool add_dummy_prefix = true;
    bool remove_extra_whitespaces = false;
    bool escape_whitespaces = true;
    bool byte_fallback = true;
    std::string unk_surface = " \xE2\x81\x87 "; // " ⁇ ": what <unk> decodes to
    int32_t bos_id = -1, eos_id = -1;
    bool add_bos = true; // LLaMA prepends <s>; sentencepiece itself adds nothing unless asked
};

// Parses a serialized ModelProto. A malformed file gives invalid_argument naming the field and the
// byte offset ("ModelProto.pieces[7].score (field 2): truncated fixed32 at byte 123"); a model
// qbench cannot encode like sentencepiece gives unsupported_option. bos/eos come from the
// trainer's bos_piece/eos_piece when those are CONTROL pieces.
status parse_sentencepiece_model(std::span<const uint8_t> bytes, spm_vocab &out);

class sentencepiece_tokenizer final : public tokenizer {
public:
    // Throws qb::error for an inconsistent vocabulary (sizes, duplicate or empty pieces, no or two
    // UNKNOWN pieces, missing or malformed byte pieces), the checks sentencepiece makes on load.
    explicit sentencepiece_tokenizer(spm_vocab vocab);
    static std::unique_ptr<sentencepiece_tokenizer> load(const std::filesystem::path &model_file);
    sentencepiece_tokenizer(const sentencepiece_tokenizer &) = delete; // the indexes hold views into vocab_
    sentencepiece_tokenizer &operator=(const sentencepiece_tokenizer &) = delete;

    using tokenizer::encode;
    std::vector<int32_t> encode(std::string_view text, bool add_bos) const override;
    std::string decode(std::span<const int32_t> ids) const override;
    std::string token_text(int32_t id) const override;
    int32_t vocab_size() const override { return int32_t(vocab_.pieces.size()); }
    std::string kind() const override { return "sentencepiece-bpe"; }

    const spm_vocab &vocab() const { return vocab_; }
    std::string normalize(std::string_view text) const; // the text BPE runs on ("▁Hello▁world")

private:
    int32_t piece_to_id(std::string_view piece) const; // reserved pieces first, then mergeable ones, else <unk>
    size_t match_user_defined(std::string_view text) const; // longest user-defined piece at text's start, 0 if none
    using unused_merge_map = std::unordered_map<std::string_view, std::pair<std::string_view, std::string_view>>;
    void merge_pieces(std::string_view text, std::vector<std::string_view> &pieces, unused_merge_map &unused_merges) const;

    spm_vocab vocab_;
    std::unordered_map<std::string_view, int32_t> mergeable_; // NORMAL, USER_DEFINED, UNUSED
    std::unordered_map<std::string_view, int32_t> reserved_;  // CONTROL, UNKNOWN, BYTE
    std::array<std::vector<std::string_view>, 256> user_defined_; // by first byte, longest first
    std::array<int32_t, 256> byte_ids_{};
    int32_t unk_id_ = -1;
    bool split_at_spaces_ = false; // encode word by word (same result, faster): see the constructor
};

} // namespace qb
