#include "data/corpus.h"

#include "core/error.h"
#include "core/json.h"

#include "config.h"

#if QBENCH_HAVE_ZLIB
#include <zlib.h>
#endif

#include <fstream>
#include <sstream>

namespace qb {

std::vector<std::string> wikitext_hf_rows(std::string_view raw) {
    std::vector<std::string> rows;
    size_t start = 0;
    while (start < raw.size()) {
        size_t nl = raw.find('\n', start);
        std::string_view line = raw.substr(start, nl == std::string_view::npos ? std::string_view::npos : nl - start);
        rows.push_back(line == " " ? std::string() : std::string(line) + "\n");
        if (nl == std::string_view::npos) break;
        start = nl + 1;
    }
    return rows;
}

std::string join_rows(const std::vector<std::string> &rows, std::string_view separator) {
    size_t total = 0;
    for (const auto &r : rows) total += r.size() + separator.size();
    std::string out;
    out.reserve(total);
    for (size_t i = 0; i < rows.size(); ++i) {
        if (i) out += separator;
        out += rows[i];
    }
    return out;
}

std::vector<std::string> wikitext_articles(std::string_view raw) {
    // A top-level heading is a line " = Title = " (one '=' on each side); sub-headings use " = = ".
    std::vector<std::string> docs;
    std::string current;
    size_t start = 0;
    while (start < raw.size()) {
        size_t nl = raw.find('\n', start);
        size_t end = nl == std::string_view::npos ? raw.size() : nl + 1;
        std::string_view line = raw.substr(start, end - start);
        const bool heading = line.size() > 6 && line.substr(0, 3) == " = " && line[3] != '=' &&
                             line.find(" = \n") == line.size() - 4;
        if (heading && !current.empty()) {
            docs.push_back(std::move(current));
            current.clear();
        }
        current += line;
        start = end;
    }
    if (!current.empty()) docs.push_back(std::move(current));
    return docs;
}

std::string read_text_file(const std::filesystem::path &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("cannot read {}", path.string());
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

namespace {

std::vector<std::string> parse_jsonl(std::istream &in, const std::string &name, const std::string &field) {
    std::vector<std::string> out;
    std::string line;
    size_t line_no = 0;
    while (std::getline(in, line)) {
        ++line_no;
        if (line.empty()) continue;
        json j;
        try {
            j = json::parse(line);
        } catch (const json::exception &e) {
            fail("{}:{}: invalid JSON: {}", name, line_no, e.what());
        }
        if (!j.contains(field) || !j[field].is_string())
            fail("{}:{}: no string field '{}' in this record", name, line_no, field);
        out.push_back(j[field].get<std::string>());
    }
    return out;
}

} // namespace

std::vector<std::string> read_jsonl_field(const std::filesystem::path &path, const std::string &field) {
    std::ifstream in(path);
    if (!in) fail("cannot read {}", path.string());
    return parse_jsonl(in, path.string(), field);
}

std::vector<std::string> read_jsonl_gz_field(const std::filesystem::path &path, const std::string &field) {
#if !QBENCH_HAVE_ZLIB
    (void)field;
    fail("{}: this qbench was built without zlib, so it cannot read gzip files (apt install zlib1g-dev, then rebuild)",
         path.string());
#else
    gzFile f = gzopen(path.c_str(), "rb");
    if (!f) fail("cannot open {} (gzip)", path.string());
    std::string text;
    char buf[1 << 16];
    int n;
    while ((n = gzread(f, buf, sizeof buf)) > 0) text.append(buf, static_cast<size_t>(n));
    int err = 0;
    const char *msg = gzerror(f, &err);
    gzclose(f);
    if (n < 0 || (err != Z_OK && err != Z_STREAM_END)) fail("{}: gzip error: {}", path.string(), msg ? msg : "unknown");
    std::istringstream in(text);
    return parse_jsonl(in, path.string(), field);
#endif
}

} // namespace qb
