// Option schemas of registered components (quantizers, back-ends, evaluations, model formats)
// and of the experiment file itself: name, type, default, range, help. The same table validates
// YAML, fills defaults, and prints `qbench list`.
#pragma once
#include "core/config_tree.h"
#include "core/json.h"

#include <limits>
#include <string>
#include <vector>

namespace qb {

enum class option_type { boolean, integer, number, string, choice, string_list };
const char *option_type_name(option_type type);

struct option_spec {
    std::string name;
    option_type type = option_type::string;
    json default_value;               // null = required
    std::string help;
    double min = -std::numeric_limits<double>::infinity(); // integer/number: inclusive range
    double max = std::numeric_limits<double>::infinity();
    std::vector<std::string> choices; // choice: the allowed strings

    bool required() const { return default_value.is_null(); }
    std::string expected() const;     // "integer in [2, 8]", "one of: cpu, cuda", ...
    std::string range_text() const;   // "[2, 8]" / "cpu|cuda" / "" for `qbench list`
};

// One value of the option's type; throws config_error (file:line:col: path: expected ..., got ...).
json option_parse_value(const config_node &node, const option_spec &spec, const std::string &path);

// The values an option takes in a sweep: a list where one value is expected is a sweep axis
// (for string_list options, a list of lists is). Always at least one value.
std::vector<json> option_parse_sweep(const config_node &node, const option_spec &spec, const std::string &path);

// Validates a mapping of options against `specs` (unknown key -> error with "did you mean"),
// fills defaults, and expands sweep axes into the cartesian product (first key outermost).
// Keys listed in `reserved` are skipped (the caller handles them, e.g. `name`).
std::vector<json> option_expand(const config_node *mapping, const std::vector<option_spec> &specs,
                                const std::string &path, const source_mark &owner_mark,
                                const std::vector<std::string> &reserved = {});

// Cartesian product of per-key alternatives, in key order (first key varies slowest).
std::vector<json> cartesian_product(const std::vector<std::pair<std::string, std::vector<json>>> &axes);

} // namespace qb
