#include "tokenizer/tokenizer.h"

#include "core/error.h"
#include "tokenizer/byte_bpe.h"
#include "tokenizer/llama2c.h"
#include "tokenizer/sentencepiece.h"

#include <fstream>

namespace qb {

void tokenizer::check_id(int32_t id) const {
    if (id < 0 || id >= vocab_size()) fail("{} tokenizer: token id {} outside [0, {})", kind(), id, vocab_size());
}

void tokenizer::set_special_tokens(int32_t bos, int32_t eos, bool add_bos) {
    for (const int32_t id : {bos, eos})
        if (id < -1 || id >= vocab_size()) fail("{} tokenizer: bos/eos id {} outside [0, {})", kind(), id, vocab_size());
    bos_id_ = bos;
    eos_id_ = eos;
    add_bos_default_ = add_bos && bos >= 0;
}

std::vector<uint8_t> read_tokenizer_file(const std::filesystem::path &file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) fail("{}: cannot open tokenizer file", file.string());
    std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) fail("{}: read error", file.string());
    return bytes;
}

std::unique_ptr<tokenizer> load_tokenizer(const std::filesystem::path &file) {
    const std::string ext = file.extension().string();
    if (ext == ".model") return sentencepiece_tokenizer::load(file);
    if (ext == ".bin") return llama2c_tokenizer::load(file);
    if (ext == ".json") return byte_bpe_tokenizer::load_json(file);
    fail("{}: unknown tokenizer file type '{}' (.model: SentencePiece, .bin: llama2.c, .json: HF tokenizer.json)", file.string(), ext);
}

std::unique_ptr<tokenizer> tokenizer_from_gguf(const gguf_tokenizer_metadata &m) {
    const size_t n = m.tokens.size();
    if (m.token_types.size() != n)
        fail("GGUF tokenizer: {} tokens but {} token types (tokenizer.ggml.token_type)", n, m.token_types.size());
    for (size_t i = 0; i < n; ++i)
        if (m.token_types[i] < 0 || m.token_types[i] > 6)
            fail("GGUF tokenizer: token {} ('{}') has token_type {} (0..6 expected)", i, m.tokens[i], m.token_types[i]);
    if (m.model == "llama") {
        if (m.scores.size() != n) fail("GGUF tokenizer 'llama': {} tokens but {} scores (tokenizer.ggml.scores)", n, m.scores.size());
        spm_vocab v;
        v.pieces = m.tokens;
        v.scores = m.scores;
        v.types.reserve(n);
        v.byte_fallback = false;
        for (const int32_t t : m.token_types) {
            v.types.push_back(t == 0 ? spm_piece_type::normal : spm_piece_type(t)); // 0 = undefined
            v.byte_fallback |= t == int32_t(spm_piece_type::byte);
        }
        // llama.cpp's SPM tokenizer: dummy prefix per add_space_prefix, no whitespace squeezing
        v.add_dummy_prefix = m.add_space_prefix.value_or(true);
        v.remove_extra_whitespaces = false;
        v.bos_id = m.bos_id;
        v.eos_id = m.eos_id;
        v.add_bos = m.add_bos.value_or(true);
        return std::make_unique<sentencepiece_tokenizer>(std::move(v));
    }
    if (m.model == "gpt2") {
        byte_bpe_vocab v;
        if (const status st = byte_bpe_pretokenizer_for(m.pre, v.pretokenizer, v.ignore_merges); !st) fail("GGUF tokenizer: {}", st.reason);
        v.tokens = m.tokens;
        for (size_t i = 0; i < n; ++i) {
            // llama.cpp matches control and user-defined tokens in the text before pre-tokenizing
            const int32_t t = m.token_types[i];
            if (t == int32_t(spm_piece_type::control) || t == int32_t(spm_piece_type::user_defined))
                v.added.push_back({m.tokens[i], int32_t(i), t == int32_t(spm_piece_type::control)});
        }
        v.merges.reserve(m.merges.size());
        for (size_t i = 0; i < m.merges.size(); ++i) {
            const std::string &merge = m.merges[i];
            const size_t space = merge.find(' ', 1);
            if (space == std::string::npos) fail("GGUF tokenizer: merge {} '{}' is not of the form 'a b'", i, merge);
            v.merges.emplace_back(merge.substr(0, space), merge.substr(space + 1));
        }
        v.bos_id = m.bos_id;
        v.eos_id = m.eos_id;
        v.add_bos = m.add_bos.value_or(false);
        return std::make_unique<byte_bpe_tokenizer>(std::move(v));
    }
    fail("GGUF tokenizer.ggml.model '{}' is not implemented (llama: SentencePiece BPE, gpt2: byte-level BPE)", m.model);
}

} // namespace qb
