#include "data/zeroshot_tasks.h"

#include "core/config_tree.h"
#include "core/environment.h"
#include "core/error.h"
#include "core/sha256.h"
#include "core/text.h"
#include "data/corpus.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace qb {

namespace fs = std::filesystem;

size_t utf8_length(std::string_view text) {
    size_t n = 0;
    for (unsigned char c : text) n += (c & 0xC0) != 0x80;
    return n;
}

fs::path zeroshot_task_file(const std::string &name_or_path) {
    if (name_or_path.find('/') != std::string::npos || name_or_path.ends_with(".yaml")) return name_or_path;
    fs::path p = source_dir() / "datasets" / "tasks" / (name_or_path + ".yaml");
    if (!fs::exists(p)) fail("unknown zero-shot task '{}' (no {}).{}", name_or_path, p.string(), suggestion_hint(name_or_path, zeroshot_task_names()));
    return p;
}

std::vector<std::string> zeroshot_task_names() {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto &e : fs::directory_iterator(source_dir() / "datasets" / "tasks", ec))
        if (e.path().extension() == ".yaml") out.push_back(e.path().stem().string());
    std::sort(out.begin(), out.end());
    return out;
}

namespace {

// ---------------------------------------------------------------------------------------------
// The definition
// ---------------------------------------------------------------------------------------------
struct choice_spec {
    std::vector<std::string> templates; // fixed list of templates
    std::string each;                   // or: one choice per element of this list field
};
struct target_spec {
    std::string field;                  // an integer field (or string digits)
    std::string index_of, in;           // position of field `index_of` in list `in`
    std::string answer_one_based;       // "1"/"2" field -> 0/1
};
struct task_definition {
    std::string task, format, docs, labels, text_template, delimiter = " ";
    choice_spec choices;
    target_spec target;
    bool partial = false;
    std::string partial_sentence, partial_blank = "_";
    std::vector<std::string> partial_options;
    std::vector<std::string> metrics;
    std::string version, template_name;
};

const config_node &required(const config_node &m, const char *key, const std::string &path) {
    const config_node *n = m.find(key);
    if (!n) throw config_error(m.mark, path.empty() ? key : path + "." + key, "missing required key");
    return *n;
}
std::string str(const config_node &n, const std::string &path) {
    if (!n.is_scalar()) throw config_error(n.mark, path, fmt::format("expected a string, got a {}", n.kind_name()));
    return n.scalar;
}
std::vector<std::string> str_list(const config_node &n, const std::string &path) {
    if (!n.is_sequence()) throw config_error(n.mark, path, fmt::format("expected a list of strings, got a {}", n.kind_name()));
    std::vector<std::string> out;
    for (size_t i = 0; i < n.items.size(); ++i) out.push_back(str(n.items[i], fmt::format("{}[{}]", path, i)));
    return out;
}
void check_keys(const config_node &m, const std::vector<std::string> &allowed, const std::string &path) {
    if (!m.is_mapping()) throw config_error(m.mark, path, fmt::format("expected a mapping, got a {}", m.kind_name()));
    for (size_t i = 0; i < m.entries.size(); ++i)
        if (std::find(allowed.begin(), allowed.end(), m.entries[i].first) == allowed.end())
            throw config_error(m.key_marks[i], path.empty() ? m.entries[i].first : path + "." + m.entries[i].first,
                               "unknown key." + suggestion_hint(m.entries[i].first, allowed));
}

task_definition parse_definition(const config_node &root) {
    check_keys(root, {"task", "files", "format", "doc_to_text", "doc_to_choice", "target_delimiter", "doc_to_target", "scoring",
                      "partial", "metric_list", "metadata"},
               "");
    task_definition d;
    d.task = str(required(root, "task", ""), "task");
    const auto &files = required(root, "files", "");
    check_keys(files, {"docs", "labels"}, "files");
    d.docs = str(required(files, "docs", "files"), "files.docs");
    if (const auto *l = files.find("labels")) d.labels = str(*l, "files.labels");
    d.format = str(required(root, "format", ""), "format");
    const std::vector<std::string> formats = {"jsonl", "jsonl_with_labels", "hellaswag_txt"};
    if (std::find(formats.begin(), formats.end(), d.format) == formats.end())
        throw config_error(root.find("format")->mark, "format", "unknown format '" + d.format + "'." + suggestion_hint(d.format, formats));
    if (d.format == "jsonl_with_labels" && d.labels.empty())
        throw config_error(files.mark, "files.labels", "format jsonl_with_labels needs a labels file");
    if (const auto *n = root.find("target_delimiter")) d.delimiter = str(*n, "target_delimiter");
    if (const auto *n = root.find("scoring")) {
        const std::string s = str(*n, "scoring");
        if (s != "full" && s != "partial") throw config_error(n->mark, "scoring", "expected full or partial, got " + s);
        d.partial = s == "partial";
    }
    if (d.partial) {
        const auto &p = required(root, "partial", "");
        check_keys(p, {"sentence", "blank", "options"}, "partial");
        d.partial_sentence = str(required(p, "sentence", "partial"), "partial.sentence");
        if (const auto *b = p.find("blank")) d.partial_blank = str(*b, "partial.blank");
        d.partial_options = str_list(required(p, "options", "partial"), "partial.options");
    } else {
        d.text_template = str(required(root, "doc_to_text", ""), "doc_to_text");
        const auto &c = required(root, "doc_to_choice", "");
        if (c.is_sequence()) d.choices.templates = str_list(c, "doc_to_choice");
        else {
            check_keys(c, {"each"}, "doc_to_choice");
            d.choices.each = str(required(c, "each", "doc_to_choice"), "doc_to_choice.each");
        }
    }
    const auto &t = required(root, "doc_to_target", "");
    if (t.is_scalar()) d.target.field = t.scalar;
    else {
        check_keys(t, {"index_of", "in", "answer_one_based"}, "doc_to_target");
        if (const auto *a = t.find("answer_one_based")) d.target.answer_one_based = str(*a, "doc_to_target.answer_one_based");
        else {
            d.target.index_of = str(required(t, "index_of", "doc_to_target"), "doc_to_target.index_of");
            d.target.in = str(required(t, "in", "doc_to_target"), "doc_to_target.in");
        }
    }
    d.metrics = str_list(required(root, "metric_list", ""), "metric_list");
    for (size_t i = 0; i < d.metrics.size(); ++i)
        if (d.metrics[i] != "acc" && d.metrics[i] != "acc_norm")
            throw config_error(required(root, "metric_list", "").items[i].mark, fmt::format("metric_list[{}]", i),
                               "unknown metric '" + d.metrics[i] + "' (acc, acc_norm)");
    if (const auto *m = root.find("metadata")) {
        if (const auto *v = m->find("version")) d.version = str(*v, "metadata.version");
        if (const auto *v = m->find("template")) d.template_name = str(*v, "metadata.template");
    }
    return d;
}

// ---------------------------------------------------------------------------------------------
// Documents and templates
// ---------------------------------------------------------------------------------------------
const json &field_of(const json &doc, const std::string &dotted, const std::string &where) {
    const json *cur = &doc;
    for (const auto &part : split(dotted, '.')) {
        if (!cur->is_object() || !cur->contains(part)) fail("{}: no field '{}' in the document {}", where, dotted, doc.dump().substr(0, 200));
        cur = &(*cur)[part];
    }
    return *cur;
}

std::string as_text(const json &v) {
    if (v.is_string()) return v.get<std::string>();
    return v.dump();
}

// "{field}" and "{a.b}" are replaced by the document's values; "{}" by `self` (for `each`).
std::string render(const std::string &tmpl, const json &doc, const std::string &where, const std::string *self = nullptr) {
    std::string out;
    for (size_t i = 0; i < tmpl.size(); ++i) {
        if (tmpl[i] != '{') {
            out += tmpl[i];
            continue;
        }
        size_t close = tmpl.find('}', i);
        if (close == std::string::npos) fail("{}: unclosed '{{' in template \"{}\"", where, tmpl);
        std::string name = tmpl.substr(i + 1, close - i - 1);
        if (name.empty()) {
            if (!self) fail("{}: '{{}}' outside a doc_to_choice each-template", where);
            out += *self;
        } else {
            out += as_text(field_of(doc, name, where));
        }
        i = close;
    }
    return out;
}

std::vector<json> read_docs(const task_definition &d, const data_file_info &docs, const data_file_info *labels) {
    std::vector<json> out;
    if (d.format == "hellaswag_txt") {
        std::istringstream in(read_text_file(docs.path));
        std::string line;
        std::vector<std::string> lines;
        while (std::getline(in, line)) lines.push_back(line);
        if (lines.size() % 6 != 0)
            fail("{}: {} lines is not a multiple of 6 (context, gold index, four endings per item)", docs.path.string(), lines.size());
        for (size_t i = 0; i < lines.size(); i += 6) {
            json doc = {{"ctx", lines[i]}, {"label", lines[i + 1]}, {"endings", json::array()}};
            for (int e = 0; e < 4; ++e) doc["endings"].push_back(lines[i + 2 + e]);
            out.push_back(std::move(doc));
        }
        return out;
    }
    std::ifstream in(docs.path);
    std::string line;
    size_t line_no = 0;
    while (std::getline(in, line)) {
        ++line_no;
        if (trim(line).empty()) continue;
        try {
            out.push_back(json::parse(line));
        } catch (const json::exception &e) {
            fail("{}:{}: invalid JSON: {}", docs.path.string(), line_no, e.what());
        }
    }
    if (labels) {
        std::istringstream lin(read_text_file(labels->path));
        std::vector<std::string> values;
        while (std::getline(lin, line))
            if (!trim(line).empty()) values.emplace_back(trim(line));
        if (values.size() != out.size())
            fail("{} has {} labels for {} documents in {}", labels->path.string(), values.size(), out.size(), docs.path.string());
        for (size_t i = 0; i < out.size(); ++i) out[i]["label"] = values[i];
    }
    return out;
}

int parse_index(const json &v, const std::string &where) {
    if (v.is_number_integer()) return v.get<int>();
    if (v.is_boolean()) return v.get<bool>() ? 1 : 0;
    if (v.is_string()) {
        try {
            size_t used = 0;
            int x = std::stoi(v.get<std::string>(), &used);
            if (used == v.get<std::string>().size()) return x;
        } catch (...) {
        }
    }
    fail("{}: expected an integer label, got {}", where, v.dump());
}

} // namespace

zeroshot_task zeroshot_task_load(const fs::path &definition, const data_dir_choice &data) {
    const task_definition d = parse_definition(config_load_file(definition));
    zeroshot_task t;
    t.name = d.task;
    t.definition_file = definition;
    t.definition_sha256 = sha256_file_hex(definition);
    t.version = d.version;
    t.template_name = d.template_name;
    t.partial = d.partial;
    t.metrics = d.metrics;
    t.files.push_back(data_file_verified(data, d.docs));
    if (!d.labels.empty()) t.files.push_back(data_file_verified(data, d.labels));
    const auto docs = read_docs(d, t.files[0], d.labels.empty() ? nullptr : &t.files[1]);

    sha256 task_hash;
    for (size_t i = 0; i < docs.size(); ++i) {
        const json &doc = docs[i];
        const std::string where = fmt::format("{} item {}", t.name, i);
        zeroshot_item item;
        item.index = static_cast<int64_t>(i);
        item.doc_id = doc.contains("id") ? as_text(doc["id"]) : doc.contains("idx") ? as_text(doc["idx"]) : std::to_string(i);
        if (d.partial) {
            const std::string sentence = as_text(field_of(doc, d.partial_sentence, where));
            const size_t blank = sentence.find(d.partial_blank);
            if (blank == std::string::npos) fail("{}: no blank '{}' in \"{}\"", where, d.partial_blank, sentence);
            // lm-eval: the target is the text after the blank, stripped, after the delimiter.
            const std::string after = std::string(trim(sentence.substr(blank + d.partial_blank.size())));
            for (const auto &opt_field : d.partial_options) {
                const std::string option = as_text(field_of(doc, opt_field, where));
                item.choices.push_back(option);
                item.requests.push_back({sentence.substr(0, blank) + option, d.delimiter + after});
            }
        } else {
            const std::string context = render(d.text_template, doc, where);
            if (!d.choices.each.empty()) {
                const json &list = field_of(doc, d.choices.each, where);
                if (!list.is_array()) fail("{}: doc_to_choice.each field '{}' is not a list", where, d.choices.each);
                for (const auto &c : list) item.choices.push_back(as_text(c));
            } else {
                for (const auto &tmpl : d.choices.templates) item.choices.push_back(render(tmpl, doc, where));
            }
            for (const auto &c : item.choices) item.requests.push_back({context, d.delimiter + c});
        }
        if (!d.target.answer_one_based.empty()) {
            item.gold = parse_index(field_of(doc, d.target.answer_one_based, where), where) - 1;
        } else if (!d.target.index_of.empty()) {
            const json key = field_of(doc, d.target.index_of, where);
            const json &list = field_of(doc, d.target.in, where);
            for (size_t k = 0; k < list.size(); ++k)
                if (list[k] == key) item.gold = static_cast<int>(k);
        } else {
            item.gold = parse_index(field_of(doc, d.target.field, where), where);
        }
        if (item.gold < 0 || item.gold >= static_cast<int>(item.requests.size()))
            fail("{}: gold index {} outside the {} choices", where, item.gold, item.requests.size());

        std::string contexts, continuations;
        for (const auto &r : item.requests) {
            contexts += r.context;
            contexts.push_back('\0');
            continuations += r.continuation;
            continuations.push_back('\0');
        }
        item.doc_hash = sha256_hex(canonical_json(doc));
        item.prompt_hash = sha256_hex(contexts);
        item.target_hash = sha256_hex(continuations + std::to_string(item.gold));
        task_hash.update(item.doc_hash);
        task_hash.update(item.prompt_hash);
        task_hash.update(item.target_hash);
        t.items.push_back(std::move(item));
    }
    t.task_hash = task_hash.hex_digest();
    return t;
}

} // namespace qb
