#include "core/text.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace qb {

std::string join(const std::vector<std::string> &parts, std::string_view sep) {
    std::string out;
    for (size_t i = 0; i < parts.size(); ++i) {
        if (i) out += sep;
        out += parts[i];
    }
    return out;
}

std::vector<std::string> split(std::string_view text, char sep) {
    std::vector<std::string> out;
    size_t start = 0;
    while (true) {
        size_t pos = text.find(sep, start);
        out.emplace_back(text.substr(start, pos == std::string_view::npos ? std::string_view::npos : pos - start));
        if (pos == std::string_view::npos) break;
        start = pos + 1;
    }
    return out;
}

std::string_view trim(std::string_view text) {
    const char *ws = " \t\r\n";
    size_t b = text.find_first_not_of(ws);
    if (b == std::string_view::npos) return {};
    size_t e = text.find_last_not_of(ws);
    return text.substr(b, e - b + 1);
}

size_t edit_distance(std::string_view a, std::string_view b) {
    // Optimal string alignment: insertions, deletions, substitutions and adjacent transpositions
    // ("cdua" is one step from "cuda"), the typos people make in config files.
    std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
    for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
    for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
    for (size_t i = 1; i <= a.size(); ++i)
        for (size_t j = 1; j <= b.size(); ++j) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
        }
    return d[a.size()][b.size()];
}

std::vector<std::string> closest_names(std::string_view name, const std::vector<std::string> &candidates) {
    const size_t limit = std::max<size_t>(2, name.size() / 3);
    std::vector<std::pair<size_t, std::string>> scored;
    for (const auto &c : candidates) {
        size_t d = edit_distance(name, c);
        // A candidate that contains the name (or vice versa) is a likely intent too: "w8a8" -> "cublaslt_w8a8".
        bool contains = name.size() >= 3 && (c.find(name) != std::string::npos || name.find(c) != std::string_view::npos);
        if (d <= limit || contains) scored.emplace_back(contains ? std::min(d, limit) : d, c);
    }
    std::stable_sort(scored.begin(), scored.end(), [](const auto &x, const auto &y) { return x.first < y.first; });
    // Only the best matches: "cdua" suggests cuda, not cuda and cpu.
    std::vector<std::string> out;
    for (auto &s : scored)
        if (s.first == scored.front().first) out.push_back(std::move(s.second));
    return out;
}

std::string suggestion_hint(std::string_view name, const std::vector<std::string> &candidates) {
    std::string out;
    auto near = closest_names(name, candidates);
    if (!near.empty()) out += fmt::format(" Did you mean: {}?", join(near, ", "));
    if (!candidates.empty()) {
        auto sorted = candidates;
        std::sort(sorted.begin(), sorted.end());
        out += fmt::format(" Available: {}", join(sorted, ", "));
    }
    return out;
}

std::string format_number(double value, int significant) {
    if (std::isnan(value)) return "nan";
    if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
    if (value == std::floor(value) && std::fabs(value) < 1e16) return fmt::format("{:.0f}", value);
    double mag = std::fabs(value);
    if (mag != 0 && (mag < 1e-3 || mag >= 1e7)) return fmt::format("{:.{}e}", value, significant - 1);
    // Fixed notation with `significant` digits, at least two decimals for readability.
    int digits_before = mag >= 1 ? static_cast<int>(std::floor(std::log10(mag))) + 1 : 0;
    int decimals = std::max(2, significant - digits_before);
    if (mag < 1 && mag > 0) decimals = std::max(decimals, static_cast<int>(-std::floor(std::log10(mag))) + significant - 1);
    return fmt::format("{:.{}f}", value, decimals);
}

} // namespace qb
