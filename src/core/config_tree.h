// A YAML document as a small tree that remembers, for every node, the file, line and column it
// came from — also after `include:` files are merged in — so that every validation error can say
// `file:line:col: key.path: ...`. Parsing into structs happens on this tree (experiment.cpp).
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace qb {

struct source_mark {
    std::shared_ptr<const std::string> file; // shared: thousands of nodes point at a few files
    int line = 0;                            // 1-based
    int column = 0;                          // 1-based
    std::string str() const;                 // "path:line:col" ("<input>" when unknown)
};

// Raised for invalid configuration; what() is the full "file:line:col: path: message" line.
struct config_error : std::runtime_error {
    config_error(const source_mark &mark, const std::string &key_path, const std::string &message);
    source_mark mark;
    std::string key_path;
    std::string message;
};

struct config_node {
    enum class kind_t { null, scalar, sequence, mapping };
    kind_t kind = kind_t::null;
    std::string scalar;   // text of a scalar
    bool plain = true;    // scalar written without quotes (so `8` is a number and `"8"` a string)
    std::vector<config_node> items;                           // sequence
    std::vector<std::pair<std::string, config_node>> entries; // mapping, in file order
    std::vector<source_mark> key_marks;                       // mapping: where each key is written
    source_mark mark;

    bool is_null() const { return kind == kind_t::null; }
    bool is_scalar() const { return kind == kind_t::scalar; }
    bool is_sequence() const { return kind == kind_t::sequence; }
    bool is_mapping() const { return kind == kind_t::mapping; }
    const config_node *find(std::string_view key) const;
    config_node *find(std::string_view key);
    const char *kind_name() const;
};

// Parses YAML text; `file` names it in marks and errors.
config_node config_parse_text(const std::string &text, const std::string &file);

// Loads a file and resolves `include:` (a path or a list of paths, relative to the including
// file). Included files are merged first, in order, and the including file's keys override:
// mappings merge key by key, anything else is replaced. Include cycles are an error.
config_node config_load_file(const std::filesystem::path &path);

// Deep merge of `over` onto `base` (the include rule above).
void config_merge(config_node &base, const config_node &over);

} // namespace qb
