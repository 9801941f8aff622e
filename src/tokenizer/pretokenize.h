// Pre-tokenizers of byte-level BPE tokenizers: the split regexes of GPT-2 and LLaMA-3, matched
// by hand (no regex engine), and HF's Digits splitter.
//
//   gpt2    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   llama3  (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//
// Both patterns match at every position, so a text splits into consecutive matches (HF Split,
// behavior "Isolated"). Character classes come from src/tokenizer/unicode.h (Oniguruma's
// tables); a malformed UTF-8 byte counts as one character of none of the classes.
#pragma once
#include <string_view>
#include <vector>

namespace qb {

enum class split_regex { gpt2, llama3 };

// The exact pattern strings of tokenizer.json Split pre-tokenizers (and GPT-2's ByteLevel regex).
extern const std::string_view split_regex_gpt2_pattern;
extern const std::string_view split_regex_llama3_pattern;

// Appends the pieces of text to out (views into text; together they cover it).
void split_by_regex(std::string_view text, split_regex regex, std::vector<std::string_view> &out);

// HF Digits: numeric characters (Rust char::is_numeric) isolated one by one (individual) or as
// runs, the rest kept as runs.
void split_digits(std::string_view text, bool individual, std::vector<std::string_view> &out);

} // namespace qb
