#include "core/options.h"

#include "core/text.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>

namespace qb {

const char *option_type_name(option_type type) {
    switch (type) {
    case option_type::boolean: return "bool";
    case option_type::integer: return "int";
    case option_type::number: return "float";
    case option_type::string: return "string";
    case option_type::choice: return "choice";
    case option_type::string_list: return "list[string]";
    }
    return "?";
}

std::string option_spec::range_text() const {
    switch (type) {
    case option_type::integer:
    case option_type::number:
        if (std::isinf(min) && std::isinf(max)) return "";
        return fmt::format("[{}, {}]", std::isinf(min) ? std::string("-inf") : format_number(min),
                           std::isinf(max) ? std::string("inf") : format_number(max));
    case option_type::choice: return join(choices, "|");
    default: return "";
    }
}

std::string option_spec::expected() const {
    switch (type) {
    case option_type::boolean: return "a boolean (true or false)";
    case option_type::integer: return range_text().empty() ? "an integer" : "an integer in " + range_text();
    case option_type::number: return range_text().empty() ? "a number" : "a number in " + range_text();
    case option_type::string: return "a string";
    case option_type::choice: return "one of: " + join(choices, ", ");
    case option_type::string_list: return "a list of strings";
    }
    return "?";
}

namespace {

std::string shown(const config_node &node) {
    if (node.is_scalar()) return node.plain ? node.scalar : fmt::format("\"{}\"", node.scalar);
    return std::string("a ") + node.kind_name();
}

[[noreturn]] void expected_error(const config_node &node, const option_spec &spec, const std::string &path) {
    throw config_error(node.mark, path, fmt::format("expected {}, got {}", spec.expected(), shown(node)));
}

bool parse_int(const std::string &text, long long &out) {
    auto s = std::string_view(text);
    if (!s.empty() && s.front() == '+') s.remove_prefix(1);
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

bool parse_double(const std::string &text, double &out) {
    auto s = std::string_view(text);
    if (!s.empty() && s.front() == '+') s.remove_prefix(1);
    if (s == ".inf" || s == ".Inf") { out = INFINITY; return true; }
    if (s == "-.inf" || s == "-.Inf") { out = -INFINITY; return true; }
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size() && !s.empty();
}

} // namespace

json option_parse_value(const config_node &node, const option_spec &spec, const std::string &path) {
    switch (spec.type) {
    case option_type::boolean: {
        if (!node.is_scalar() || !node.plain) expected_error(node, spec, path);
        const auto &s = node.scalar;
        if (s == "true" || s == "True" || s == "TRUE") return true;
        if (s == "false" || s == "False" || s == "FALSE") return false;
        expected_error(node, spec, path);
    }
    case option_type::integer: {
        long long v = 0;
        if (!node.is_scalar() || !node.plain || !parse_int(node.scalar, v)) expected_error(node, spec, path);
        if (double(v) < spec.min || double(v) > spec.max) expected_error(node, spec, path);
        return v;
    }
    case option_type::number: {
        double v = 0;
        if (!node.is_scalar() || !node.plain || !parse_double(node.scalar, v) || std::isnan(v))
            expected_error(node, spec, path);
        if (v < spec.min || v > spec.max) expected_error(node, spec, path);
        return v;
    }
    case option_type::string:
        if (!node.is_scalar()) expected_error(node, spec, path);
        return node.scalar;
    case option_type::choice: {
        if (!node.is_scalar()) expected_error(node, spec, path);
        for (const auto &c : spec.choices)
            if (c == node.scalar) return node.scalar;
        throw config_error(node.mark, path,
                           fmt::format("unknown value '{}'.{}", node.scalar, suggestion_hint(node.scalar, spec.choices)));
    }
    case option_type::string_list: {
        json out = json::array();
        if (node.is_null()) return out;
        if (!node.is_sequence()) expected_error(node, spec, path);
        for (size_t i = 0; i < node.items.size(); ++i) {
            const auto &item = node.items[i];
            if (!item.is_scalar())
                throw config_error(item.mark, fmt::format("{}[{}]", path, i), fmt::format("expected a string, got {}", shown(item)));
            out.push_back(item.scalar);
        }
        return out;
    }
    }
    expected_error(node, spec, path);
}

std::vector<json> option_parse_sweep(const config_node &node, const option_spec &spec, const std::string &path) {
    const bool is_axis = spec.type == option_type::string_list
                             ? node.is_sequence() && !node.items.empty() && node.items.front().is_sequence()
                             : node.is_sequence();
    if (!is_axis) return {option_parse_value(node, spec, path)};
    if (node.items.empty()) throw config_error(node.mark, path, "an empty list gives the sweep no values");
    std::vector<json> values;
    for (size_t i = 0; i < node.items.size(); ++i) {
        json v = option_parse_value(node.items[i], spec, fmt::format("{}[{}]", path, i));
        for (const auto &seen : values)
            if (seen == v) throw config_error(node.items[i].mark, fmt::format("{}[{}]", path, i), fmt::format("duplicate sweep value {}", v.dump()));
        values.push_back(std::move(v));
    }
    return values;
}

std::vector<json> cartesian_product(const std::vector<std::pair<std::string, std::vector<json>>> &axes) {
    std::vector<json> out{json::object()};
    for (const auto &[key, values] : axes) {
        std::vector<json> next;
        next.reserve(out.size() * values.size());
        for (const auto &partial : out)
            for (const auto &v : values) {
                json j = partial;
                j[key] = v;
                next.push_back(std::move(j));
            }
        out = std::move(next);
    }
    return out;
}

std::vector<json> option_expand(const config_node *mapping, const std::vector<option_spec> &specs, const std::string &path,
                                const source_mark &owner_mark, const std::vector<std::string> &reserved) {
    auto child = [&](const std::string &key) { return path.empty() ? key : path + "." + key; };
    if (mapping && !mapping->is_mapping() && !mapping->is_null())
        throw config_error(mapping->mark, path, fmt::format("expected a mapping of options, got a {}", mapping->kind_name()));

    std::vector<std::string> allowed;
    for (const auto &s : specs) allowed.push_back(s.name);
    if (mapping) {
        for (size_t i = 0; i < mapping->entries.size(); ++i) {
            const auto &key = mapping->entries[i].first;
            bool is_reserved = std::find(reserved.begin(), reserved.end(), key) != reserved.end();
            bool known = std::find(allowed.begin(), allowed.end(), key) != allowed.end();
            if (!known && !is_reserved) {
                std::string hint = allowed.empty() ? std::string(" This component takes no options.")
                                                   : suggestion_hint(key, allowed);
                throw config_error(mapping->key_marks[i], child(key), "unknown key." + hint);
            }
        }
    }
    std::vector<std::pair<std::string, std::vector<json>>> axes;
    for (const auto &spec : specs) {
        const config_node *value = mapping ? mapping->find(spec.name) : nullptr;
        if (!value) {
            if (spec.required())
                throw config_error(mapping ? mapping->mark : owner_mark, child(spec.name),
                                   fmt::format("missing required option ({}; {})", spec.expected(), spec.help));
            axes.push_back({spec.name, {spec.default_value}});
            continue;
        }
        axes.push_back({spec.name, option_parse_sweep(*value, spec, child(spec.name))});
    }
    return cartesian_product(axes);
}

} // namespace qb
