// Small string helpers shared by the config parser, the registries and the table printer.
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace qb {

std::string join(const std::vector<std::string> &parts, std::string_view sep);
std::vector<std::string> split(std::string_view text, char sep);
std::string_view trim(std::string_view text);

// Edit distance with adjacent transpositions (optimal string alignment); for "did you mean".
size_t edit_distance(std::string_view a, std::string_view b);

// The candidates closest to `name` (distance <= max(2, |name|/3), or containing it), ties kept.
std::vector<std::string> closest_names(std::string_view name, const std::vector<std::string> &candidates);

// " Did you mean: x? Available: a, b, c" (leading space; empty list -> "").
std::string suggestion_hint(std::string_view name, const std::vector<std::string> &candidates);

// Shortest decimal that round-trips (for tables and messages; not for hashing).
std::string format_number(double value, int significant = 4);

} // namespace qb
