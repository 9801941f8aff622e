#include "core/config_tree.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <fstream>
#include <sstream>

namespace qb {

std::string source_mark::str() const {
    return fmt::format("{}:{}:{}", file ? *file : std::string("<input>"), line, column);
}

config_error::config_error(const source_mark &m, const std::string &path, const std::string &msg)
    : std::runtime_error(path.empty() ? fmt::format("{}: {}", m.str(), msg) : fmt::format("{}: {}: {}", m.str(), path, msg)),
      mark(m), key_path(path), message(msg) {}

const config_node *config_node::find(std::string_view key) const {
    for (const auto &[k, v] : entries)
        if (k == key) return &v;
    return nullptr;
}

config_node *config_node::find(std::string_view key) {
    for (auto &[k, v] : entries)
        if (k == key) return &v;
    return nullptr;
}

const char *config_node::kind_name() const {
    switch (kind) {
    case kind_t::null: return "null";
    case kind_t::scalar: return "scalar";
    case kind_t::sequence: return "list";
    case kind_t::mapping: return "mapping";
    }
    return "?";
}

namespace {

source_mark mark_of(const YAML::Mark &m, const std::shared_ptr<const std::string> &file) {
    // yaml-cpp marks are 0-based; editors and compilers count from 1.
    return {file, m.line + 1, m.column + 1};
}

config_node convert(const YAML::Node &node, const std::shared_ptr<const std::string> &file) {
    config_node out;
    out.mark = mark_of(node.Mark(), file);
    switch (node.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null: out.kind = config_node::kind_t::null; break;
    case YAML::NodeType::Scalar:
        out.kind = config_node::kind_t::scalar;
        out.scalar = node.Scalar();
        out.plain = node.Tag() != "!"; // yaml-cpp tags quoted scalars "!" and plain ones "?"
        break;
    case YAML::NodeType::Sequence:
        out.kind = config_node::kind_t::sequence;
        for (const auto &item : node) out.items.push_back(convert(item, file));
        break;
    case YAML::NodeType::Map:
        out.kind = config_node::kind_t::mapping;
        for (const auto &kv : node) {
            const source_mark key_mark = mark_of(kv.first.Mark(), file);
            if (!kv.first.IsScalar()) throw config_error(key_mark, "", "mapping keys must be plain names");
            std::string key = kv.first.Scalar();
            if (out.find(key)) throw config_error(key_mark, key, "duplicate key");
            out.entries.emplace_back(key, convert(kv.second, file));
            out.key_marks.push_back(key_mark);
        }
        break;
    }
    return out;
}

config_node load_recursive(const std::filesystem::path &path, std::vector<std::filesystem::path> &stack,
                           const source_mark *included_from) {
    std::error_code ec;
    auto canonical = std::filesystem::weakly_canonical(path, ec);
    if (ec) canonical = path;
    for (const auto &p : stack)
        if (p == canonical) {
            std::string chain;
            for (const auto &q : stack) chain += q.string() + " -> ";
            throw config_error(included_from ? *included_from : source_mark{}, "include",
                               fmt::format("include cycle: {}{}", chain, canonical.string()));
        }
    std::ifstream in(path);
    if (!in) {
        std::string msg = fmt::format("cannot open '{}'", path.string());
        if (included_from) throw config_error(*included_from, "include", msg);
        throw config_error(source_mark{std::make_shared<const std::string>(path.string()), 0, 0}, "", msg);
    }
    std::stringstream text;
    text << in.rdbuf();
    config_node node = config_parse_text(text.str(), path.string());
    if (node.is_null()) {
        node.kind = config_node::kind_t::mapping; // an empty file is an empty mapping
    } else if (!node.is_mapping()) {
        throw config_error(node.mark, "", fmt::format("expected a mapping at the top level, got a {}", node.kind_name()));
    }

    const config_node *include = node.find("include");
    if (!include) return node;
    std::vector<const config_node *> targets;
    if (include->is_scalar()) targets.push_back(include);
    else if (include->is_sequence())
        for (const auto &item : include->items) {
            if (!item.is_scalar()) throw config_error(item.mark, "include", "expected a file path");
            targets.push_back(&item);
        }
    else throw config_error(include->mark, "include", "expected a file path or a list of file paths");

    stack.push_back(canonical);
    config_node merged;
    merged.kind = config_node::kind_t::mapping;
    merged.mark = node.mark;
    for (const config_node *t : targets) {
        auto base = load_recursive(path.parent_path() / t->scalar, stack, &t->mark);
        config_merge(merged, base);
    }
    stack.pop_back();
    // The including file's own keys override; `include` itself is consumed here.
    config_node own = node;
    for (size_t i = 0; i < own.entries.size(); ++i)
        if (own.entries[i].first == "include") {
            own.entries.erase(own.entries.begin() + static_cast<long>(i));
            own.key_marks.erase(own.key_marks.begin() + static_cast<long>(i));
            break;
        }
    config_merge(merged, own);
    return merged;
}

} // namespace

config_node config_parse_text(const std::string &text, const std::string &file) {
    auto file_name = std::make_shared<const std::string>(file);
    try {
        return convert(YAML::Load(text), file_name);
    } catch (const YAML::Exception &e) {
        throw config_error(mark_of(e.mark, file_name), "", fmt::format("YAML syntax error: {}", e.msg));
    }
}

config_node config_load_file(const std::filesystem::path &path) {
    std::vector<std::filesystem::path> stack;
    return load_recursive(path, stack, nullptr);
}

void config_merge(config_node &base, const config_node &over) {
    if (base.is_mapping() && over.is_mapping()) {
        for (size_t i = 0; i < over.entries.size(); ++i) {
            const auto &[key, value] = over.entries[i];
            if (config_node *existing = base.find(key)) {
                config_merge(*existing, value);
            } else {
                base.entries.emplace_back(key, value);
                base.key_marks.push_back(i < over.key_marks.size() ? over.key_marks[i] : value.mark);
            }
        }
        return;
    }
    base = over;
}

} // namespace qb
