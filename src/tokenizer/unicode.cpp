#include "tokenizer/unicode.h"

#include <algorithm>

namespace qb {

namespace {

bool in_ranges(const code_point_range *ranges, size_t count, char32_t c) {
    const auto *end = ranges + count;
    const auto *it = std::upper_bound(ranges, end, c, [](char32_t v, const code_point_range &r) { return v < r.first; });
    return it != ranges && c <= (it - 1)->last;
}

bool is_continuation(unsigned char b) { return (b & 0xC0) == 0x80; }

} // namespace

utf8_char utf8_decode(std::string_view text) {
    const auto *s = reinterpret_cast<const unsigned char *>(text.data());
    const size_t n = text.size();
    const unsigned char b0 = s[0];
    if (b0 < 0x80) return {b0, 1};
    // Lead byte -> sequence length and the range allowed for the second byte, which is where
    // overlong forms (E0, F0), surrogates (ED) and values above U+10FFFF (F4) are excluded.
    size_t len = 0;
    unsigned char lo = 0x80, hi = 0xBF;
    if (b0 >= 0xC2 && b0 <= 0xDF) len = 2;
    else if (b0 >= 0xE0 && b0 <= 0xEF) {
        len = 3;
        if (b0 == 0xE0) lo = 0xA0;
        if (b0 == 0xED) hi = 0x9F;
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        len = 4;
        if (b0 == 0xF0) lo = 0x90;
        if (b0 == 0xF4) hi = 0x8F;
    } else
        return {utf8_invalid, 1};
    if (n < 2 || s[1] < lo || s[1] > hi) return {utf8_invalid, 1};
    for (size_t i = 2; i < len; ++i)
        if (i >= n || !is_continuation(s[i])) return {utf8_invalid, i};
    char32_t cp = b0 & (0xFF >> (len + 1));
    for (size_t i = 1; i < len; ++i) cp = (cp << 6) | (s[i] & 0x3F);
    return {cp, len};
}

void utf8_append(std::string &out, char32_t c) {
    if (c < 0x80) {
        out += char(c);
    } else if (c < 0x800) {
        out += char(0xC0 | (c >> 6));
        out += char(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
        out += char(0xE0 | (c >> 12));
        out += char(0x80 | ((c >> 6) & 0x3F));
        out += char(0x80 | (c & 0x3F));
    } else {
        out += char(0xF0 | (c >> 18));
        out += char(0x80 | ((c >> 12) & 0x3F));
        out += char(0x80 | ((c >> 6) & 0x3F));
        out += char(0x80 | (c & 0x3F));
    }
}

std::string utf8_make_valid(std::string_view bytes, utf8_repair policy) {
    std::string out;
    out.reserve(bytes.size());
    size_t i = 0;
    while (i < bytes.size()) {
        const utf8_char c = utf8_decode(bytes.substr(i));
        if (c.code_point != utf8_invalid) {
            out.append(bytes.substr(i, c.length));
            i += c.length;
        } else {
            out.append(utf8_replacement);
            i += policy == utf8_repair::per_byte ? 1 : c.length;
        }
    }
    return out;
}

bool is_letter(char32_t c) {
    if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
    return in_ranges(unicode_tables::letter, unicode_tables::letter_count, c);
}

bool is_number(char32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    return in_ranges(unicode_tables::number, unicode_tables::number_count, c);
}

bool is_numeric(char32_t c) {
    if (c < 0x80) return c >= '0' && c <= '9';
    return in_ranges(unicode_tables::numeric, unicode_tables::numeric_count, c);
}

bool is_whitespace(char32_t c) {
    if (c < 0x80) return c == ' ' || (c >= 0x09 && c <= 0x0D);
    return in_ranges(unicode_tables::whitespace, unicode_tables::whitespace_count, c);
}

} // namespace qb
