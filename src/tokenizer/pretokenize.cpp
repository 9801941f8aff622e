#include "tokenizer/pretokenize.h"

#include "tokenizer/unicode.h"

#include <algorithm>

namespace qb {

const std::string_view split_regex_gpt2_pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
const std::string_view split_regex_llama3_pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

namespace {

enum char_class : uint8_t { cls_letter, cls_number, cls_space, cls_other };

// The text as characters: class, code point and byte offset of each (offsets has one more entry).
struct char_view {
    std::vector<char32_t> cps;
    std::vector<char_class> cls;
    std::vector<size_t> offsets;

    explicit char_view(std::string_view text) {
        cps.reserve(text.size());
        cls.reserve(text.size());
        offsets.reserve(text.size() + 1);
        for (size_t i = 0; i < text.size();) {
            const utf8_char c = utf8_decode(text.substr(i));
            const size_t len = c.code_point == utf8_invalid ? 1 : c.length;
            offsets.push_back(i);
            cps.push_back(c.code_point);
            cls.push_back(c.code_point == utf8_invalid ? cls_other
                          : is_letter(c.code_point)     ? cls_letter
                          : is_number(c.code_point)     ? cls_number
                          : is_whitespace(c.code_point) ? cls_space
                                                        : cls_other);
            i += len;
        }
        offsets.push_back(text.size());
    }
    size_t size() const { return cps.size(); }
    // End of the run of class k starting at i (i itself if cls[i] != k).
    size_t run(size_t i, char_class k) const {
        while (i < size() && cls[i] == k) ++i;
        return i;
    }
};

// \s+(?!\S) then \s+, at a whitespace character i: a run of whitespace followed by a
// non-space keeps its last space for the next piece (" world"), unless the run is one character.
size_t match_trailing_space(const char_view &t, size_t i) {
    const size_t end = t.run(i, cls_space);
    if (end == t.size()) return end - i;
    return std::max<size_t>(end - i - 1, 1);
}

// Contraction letters of 's 't 're 've 'm 'll 'd. The llama3 pattern matches them case-
// insensitively, with Unicode simple case folding: ſ (U+017F, long s) folds to s.
char32_t fold(char32_t c, bool ignore_case) {
    if (!ignore_case) return c;
    if (c >= 'A' && c <= 'Z') return c + 32;
    if (c == 0x17F) return 's';
    return c;
}

size_t match_contraction(const char_view &t, size_t i, bool ignore_case) {
    if (t.cps[i] != '\'' || i + 1 >= t.size()) return 0;
    const char32_t a = fold(t.cps[i + 1], ignore_case);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (i + 2 >= t.size()) return 0;
    const char32_t b = fold(t.cps[i + 2], ignore_case);
    if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    return 0;
}

size_t match_gpt2(const char_view &t, size_t i) {
    if (const size_t n = match_contraction(t, i, false)) return n;
    // " ?\p{L}+", " ?\p{N}+", " ?[^\s\p{L}\p{N}]+": an optional ASCII space, then a run of one class
    const size_t j = t.cps[i] == ' ' && i + 1 < t.size() && t.cls[i + 1] != cls_space ? i + 1 : i;
    if (t.cls[j] != cls_space) return t.run(j, t.cls[j]) - i;
    return match_trailing_space(t, i);
}

bool is_cr_lf(char32_t c) { return c == '\r' || c == '\n'; }

size_t match_llama3(const char_view &t, size_t i) {
    if (const size_t n = match_contraction(t, i, true)) return n;
    const char_class c = t.cls[i];
    // [^\r\n\p{L}\p{N}]?\p{L}+ : one leading non-letter, non-digit (a space, punctuation) may join a word
    if (c != cls_letter && c != cls_number && !is_cr_lf(t.cps[i]) && i + 1 < t.size() && t.cls[i + 1] == cls_letter)
        return t.run(i + 1, cls_letter) - i;
    if (c == cls_letter) return t.run(i, cls_letter) - i;
    if (c == cls_number) return std::min<size_t>(t.run(i, cls_number) - i, 3); // \p{N}{1,3}
    // " ?[^\s\p{L}\p{N}]+[\r\n]*"
    const size_t j = t.cps[i] == ' ' && i + 1 < t.size() && t.cls[i + 1] == cls_other ? i + 1 : i;
    if (t.cls[j] == cls_other) {
        size_t end = t.run(j, cls_other);
        while (end < t.size() && is_cr_lf(t.cps[end])) ++end;
        return end - i;
    }
    // "\s*[\r\n]+": whitespace up to and including the run's last \r or \n
    const size_t end = t.run(i, cls_space);
    for (size_t k = end; k > i; --k)
        if (is_cr_lf(t.cps[k - 1])) return k - i;
    return match_trailing_space(t, i);
}

} // namespace

void split_by_regex(std::string_view text, split_regex regex, std::vector<std::string_view> &out) {
    const char_view t(text);
    for (size_t i = 0; i < t.size();) {
        const size_t n = regex == split_regex::gpt2 ? match_gpt2(t, i) : match_llama3(t, i);
        out.push_back(text.substr(t.offsets[i], t.offsets[i + n] - t.offsets[i]));
        i += n;
    }
}

void split_digits(std::string_view text, bool individual, std::vector<std::string_view> &out) {
    size_t piece_start = 0;
    bool piece_numeric = false;
    for (size_t i = 0; i < text.size();) {
        const utf8_char c = utf8_decode(text.substr(i));
        const size_t len = c.code_point == utf8_invalid ? 1 : c.length;
        const bool numeric = c.code_point != utf8_invalid && is_numeric(c.code_point);
        if (i > piece_start && (numeric != piece_numeric || (numeric && individual))) {
            out.push_back(text.substr(piece_start, i - piece_start));
            piece_start = i;
        }
        piece_numeric = numeric;
        i += len;
    }
    if (piece_start < text.size()) out.push_back(text.substr(piece_start));
}

} // namespace qb
