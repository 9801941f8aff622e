// UTF-8 decoding and the few Unicode properties the tokenizers need: \p{L}, \p{N}, \s as the
// reference regex engine (Oniguruma, in HF tokenizers) defines them. Torch-free.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace qb {

struct code_point_range {
    char32_t first, last; // inclusive
};

namespace unicode_tables { // generated: src/tokenizer/unicode_tables.cpp
extern const code_point_range letter[], number[], numeric[], whitespace[];
extern const size_t letter_count, number_count, numeric_count, whitespace_count;
} // namespace unicode_tables

inline constexpr char32_t utf8_invalid = 0xFFFFFFFFu;
inline constexpr std::string_view utf8_replacement = "\xEF\xBF\xBD"; // U+FFFD

struct utf8_char {
    char32_t code_point; // utf8_invalid for a malformed sequence
    size_t length;       // bytes consumed; for a malformed sequence its maximal subpart (>= 1)
};

// Decodes the code point that starts text (non-empty). Strict: overlong forms, surrogates and
// values above U+10FFFF are malformed. The length of a malformed sequence is its "maximal
// subpart" (Unicode ch. 3, U+FFFD substitution), which Rust's String::from_utf8_lossy replaces
// by one U+FFFD; SentencePiece instead replaces byte by byte.
utf8_char utf8_decode(std::string_view text);

void utf8_append(std::string &out, char32_t code_point);

enum class utf8_repair {
    per_maximal_subpart, // one U+FFFD per maximal subpart (HF tokenizers, Rust)
    per_byte,            // one U+FFFD per byte of a malformed sequence (SentencePiece)
};
std::string utf8_make_valid(std::string_view bytes, utf8_repair policy);

// Binary search in the generated tables (ASCII answered without one).
bool is_letter(char32_t c);     // \p{L}
bool is_number(char32_t c);     // \p{N}
bool is_numeric(char32_t c);    // Rust char::is_numeric (HF Digits pre-tokenizer)
bool is_whitespace(char32_t c); // \s = White_Space = Rust char::is_whitespace

} // namespace qb
