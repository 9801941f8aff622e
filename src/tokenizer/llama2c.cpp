#include "tokenizer/llama2c.h"

#include "core/error.h"
#include "tokenizer/bpe_merge.h"
#include "tokenizer/load_file.h"

#include <cstring>
#include <utility>

namespace qb {

namespace {

constexpr int32_t llama2c_bos = 1, llama2c_eos = 2; // fixed in run.c
constexpr int32_t llama2c_byte_base = 3;           // run.c: "+3 because the first 3 vocab elements are <unk>, <s>, </s>"
constexpr float llama2c_min_score = -1e10f;         // run.c's initial best_score: merges must beat it

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// run.c: sscanf(piece, "<0x%02hhX>", &byte) == 1, i.e. "<0x" and one or two hex digits.
int byte_of_piece(std::string_view piece) {
    if (piece.size() < 4 || piece.substr(0, 3) != "<0x") return -1;
    int v = hex_digit(piece[3]);
    if (v < 0) return -1;
    if (piece.size() > 4 && hex_digit(piece[4]) >= 0) v = v * 16 + hex_digit(piece[4]);
    return v;
}

} // namespace

status parse_llama2c_tokenizer(std::span<const uint8_t> bytes, llama2c_vocab &out, int32_t expected_vocab_size) {
    out = llama2c_vocab{};
    auto read_i32 = [&](size_t at) {
        int32_t v;
        std::memcpy(&v, bytes.data() + at, 4);
        return v;
    };
    if (bytes.size() < 4)
        return status::failure(status_code::invalid_argument,
                               fmt::format("header: {} bytes, max_token_length needs 4", bytes.size()));
    out.max_token_length = read_i32(0);
    if (out.max_token_length <= 0)
        return status::failure(status_code::invalid_argument, fmt::format("header: max_token_length {} at byte 0", out.max_token_length));
    size_t at = 4;
    for (int32_t i = 0; expected_vocab_size < 0 ? at < bytes.size() : i < expected_vocab_size; ++i) {
        if (bytes.size() - at < 8)
            return status::failure(status_code::invalid_argument,
                                   fmt::format("token {}: score and length need 8 bytes at byte {}, {} left", i, at, bytes.size() - at));
        float score;
        std::memcpy(&score, bytes.data() + at, 4);
        const int32_t len = read_i32(at + 4);
        if (len < 0 || size_t(len) > bytes.size() - at - 8)
            return status::failure(status_code::invalid_argument,
                                   fmt::format("token {}: length {} at byte {} runs past the end ({} bytes left)", i, len, at + 4,
                                               bytes.size() - at - 8));
        if (len > out.max_token_length)
            return status::failure(status_code::invalid_argument,
                                   fmt::format("token {}: length {} at byte {} exceeds the header's max_token_length {}", i, len,
                                               at + 4, out.max_token_length));
        out.tokens.emplace_back(reinterpret_cast<const char *>(bytes.data() + at + 8), size_t(len));
        out.scores.push_back(score);
        at += 8 + size_t(len);
    }
    return status::success();
}

llama2c_tokenizer::llama2c_tokenizer(llama2c_vocab vocab) : vocab_(std::move(vocab)) {
    const size_t n = vocab_.tokens.size();
    if (vocab_.scores.size() != n) fail("llama2.c vocabulary: {} tokens but {} scores", n, vocab_.scores.size());
    if (n < size_t(llama2c_byte_base + 256) || n > size_t(INT32_MAX))
        fail("llama2.c vocabulary: {} tokens; run.c needs <unk>, <s>, </s> and 256 byte pieces first", n);
    for (int b = 0; b < 256; ++b)
        if (const std::string want = fmt::format("<0x{:02X}>", b); vocab_.tokens[llama2c_byte_base + b] != want)
            fail("llama2.c vocabulary: token {} is '{}', run.c's byte fallback needs '{}' there", llama2c_byte_base + b,
                 vocab_.tokens[llama2c_byte_base + b], want);
    for (int32_t id = 0; id < int32_t(n); ++id) index_.emplace(vocab_.tokens[id], id);
    space_id_ = lookup(" ");
    if (space_id_ < 0) fail("llama2.c vocabulary: no \" \" token for the dummy prefix");
    set_special_tokens(llama2c_bos, llama2c_eos, true);
}

std::unique_ptr<llama2c_tokenizer> llama2c_tokenizer::load(const std::filesystem::path &file, int32_t vocab_size) {
    return detail::load_tokenizer_file<llama2c_tokenizer, llama2c_vocab>(
        file, "a llama2.c tokenizer",
        [&](std::span<const uint8_t> bytes, llama2c_vocab &v) { return parse_llama2c_tokenizer(bytes, v, vocab_size); });
}

int32_t llama2c_tokenizer::lookup(std::string_view text) const {
    const auto it = index_.find(text);
    return it == index_.end() ? -1 : it->second;
}

std::vector<int32_t> llama2c_tokenizer::encode(std::string_view text, bool add_bos) const {
    if (const size_t nul = text.find('\0'); nul != std::string_view::npos)
        fail("llama2.c tokenizer: text has a NUL byte at offset {} (run.c's C string would end there)", nul);
    std::vector<detail::bpe_symbol> symbols;
    symbols.reserve(text.size() + 2);
    auto push = [&](int32_t id) {
        detail::bpe_symbol s;
        s.id = id;
        symbols.push_back(s);
    };
    if (add_bos) push(llama2c_bos);
    if (!text.empty()) push(space_id_);
    // One UTF-8 character at a time: a lead byte starts a new character, continuation bytes
    // (at most three) join it; stray continuation bytes end up alone.
    std::string character;
    for (size_t i = 0; i < text.size(); ++i) {
        const char c = text[i];
        if ((c & 0xC0) != 0x80) character.clear();
        character += c;
        const char next = i + 1 < text.size() ? text[i + 1] : '\0';
        if ((next & 0xC0) == 0x80 && character.size() < 4) continue;
        if (const int32_t id = lookup(character); id >= 0) {
            push(id);
        } else {
            for (char b : character) push(llama2c_byte_base + uint8_t(b));
        }
        character.clear();
    }
    std::string pair;
    detail::bpe_merge(symbols, [&](const detail::bpe_symbol &l, const detail::bpe_symbol &r) -> std::optional<detail::bpe_candidate> {
        pair.assign(vocab_.tokens[l.id]).append(vocab_.tokens[r.id]);
        const int32_t id = lookup(pair);
        if (id < 0 || !(vocab_.scores[id] > llama2c_min_score)) return std::nullopt;
        return detail::bpe_candidate{vocab_.scores[id], id};
    });
    std::vector<int32_t> ids;
    ids.reserve(symbols.size());
    for (int32_t i = symbols.empty() ? -1 : 0; i != -1; i = symbols[i].next) ids.push_back(symbols[i].id);
    return ids;
}

std::string llama2c_tokenizer::decode(std::span<const int32_t> ids) const {
    std::string text;
    int32_t prev = -1;
    for (const int32_t id : ids) {
        check_id(id);
        const int32_t prev_id = std::exchange(prev, id);
        if (id == llama2c_bos || id == llama2c_eos) continue;
        std::string_view piece = vocab_.tokens[id];
        if (prev_id == llama2c_bos && piece.starts_with(' ')) piece.remove_prefix(1);
        if (const int b = byte_of_piece(piece); b >= 0) text += char(b);
        else text += piece;
    }
    return text;
}

std::string llama2c_tokenizer::token_text(int32_t id) const {
    check_id(id);
    return vocab_.tokens[id];
}

} // namespace qb
