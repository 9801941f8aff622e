#include "core/table.h"

#include "core/error.h"
#include "core/experiment.h"
#include "core/text.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

namespace qb {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Reference CSV
// ---------------------------------------------------------------------------------------------
namespace {

std::vector<std::string> parse_csv_line(const std::string &line, const std::string &where) {
    std::vector<std::string> out;
    std::string cur;
    bool quoted = false;
    for (size_t i = 0; i < line.size(); ++i) {
        char c = line[i];
        if (quoted) {
            if (c == '"' && i + 1 < line.size() && line[i + 1] == '"') { cur += '"'; ++i; }
            else if (c == '"') quoted = false;
            else cur += c;
        } else if (c == '"') quoted = true;
        else if (c == ',') { out.push_back(std::string(trim(cur))); cur.clear(); }
        else if (c != '\r') cur += c;
    }
    if (quoted) fail("{}: unterminated quote", where);
    out.push_back(std::string(trim(cur)));
    return out;
}

std::string csv_escape(const std::string &s) {
    if (s.find_first_of(",\"\n") == std::string::npos) return s;
    std::string out = "\"";
    for (char c : s) {
        if (c == '"') out += '"';
        out += c;
    }
    return out + "\"";
}

std::string latex_escape(const std::string &s) {
    std::string out;
    for (char c : s) {
        switch (c) {
        case '_': case '%': case '&': case '#': case '$': case '{': case '}': out += '\\'; out += c; break;
        case '\\': out += "\\textbackslash{}"; break;
        default: out += c;
        }
    }
    return out;
}

std::string json_to_cell(const json &v) {
    if (v.is_null()) return "";
    if (v.is_string()) return v.get<std::string>();
    if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
    if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
    if (v.is_number_float()) return format_number(v.get<double>());
    if (v.is_array()) {
        std::vector<std::string> parts;
        for (const auto &x : v) parts.push_back(json_to_cell(x));
        return "[" + join(parts, " ") + "]";
    }
    return v.dump();
}

void flatten_into(const std::string &prefix, const json &v, std::map<std::string, json> &out) {
    if (v.is_object()) {
        for (const auto &[k, x] : v.items()) flatten_into(prefix.empty() ? k : prefix + "." + k, x, out);
    } else {
        out[prefix] = v;
    }
}

} // namespace

reference_table reference_read_csv(const fs::path &path) {
    std::ifstream in(path);
    if (!in) fail("cannot read reference table {}", path.string());
    reference_table t;
    t.source = path.filename().string();
    std::string line;
    size_t line_no = 0;
    while (std::getline(in, line)) {
        ++line_no;
        auto trimmed = trim(line);
        if (trimmed.empty() || trimmed.front() == '#') continue;
        auto fields = parse_csv_line(line, fmt::format("{}:{}", path.string(), line_no));
        if (t.header.empty()) { t.header = fields; continue; }
        if (fields.size() != t.header.size())
            fail("{}:{}: expected {} fields (as the header), found {}", path.string(), line_no, t.header.size(), fields.size());
        t.rows.push_back(std::move(fields));
    }
    if (t.header.empty()) fail("reference table {} has no header line", path.string());
    return t;
}

reference_table reference_melt(const reference_table &wide, const std::string &field, const std::vector<std::string> &keep,
                               const std::string &value_column) {
    reference_table t;
    t.source = wide.source;
    std::vector<size_t> keep_idx, melt_idx;
    for (size_t i = 0; i < wide.header.size(); ++i)
        (std::find(keep.begin(), keep.end(), wide.header[i]) != keep.end() ? keep_idx : melt_idx).push_back(i);
    for (size_t i : keep_idx) t.header.push_back(wide.header[i]);
    t.header.push_back(field);
    t.header.push_back(value_column);
    for (const auto &row : wide.rows)
        for (size_t m : melt_idx) {
            if (row[m].empty()) continue; // the paper leaves cells blank where a method has no number
            std::vector<std::string> r;
            for (size_t i : keep_idx) r.push_back(row[i]);
            r.push_back(wide.header[m]);
            r.push_back(row[m]);
            t.rows.push_back(std::move(r));
        }
    return t;
}

table_options table_options_from(const experiment &exp) {
    table_options t;
    t.columns = exp.table.columns;
    t.metric = exp.table.metric;
    t.join = exp.table.join;
    if (!exp.table.reference_value.empty()) t.reference_value = exp.table.reference_value;
    if (!exp.table.reference.empty()) {
        fs::path ref = exp.table.reference;
        if (ref.is_relative()) ref = exp.file.parent_path() / ref;
        auto csv = reference_read_csv(ref);
        if (!exp.table.reference_melt.empty()) {
            std::vector<std::string> keep;
            for (const auto &j : exp.table.join) keep.push_back(j.substr(0, j.find('=')));
            csv = reference_melt(csv, exp.table.reference_melt, keep, t.reference_value);
        }
        t.reference = std::move(csv);
    }
    return t;
}

// ---------------------------------------------------------------------------------------------
// Building the table
// ---------------------------------------------------------------------------------------------
std::map<std::string, json> flatten_config(const json &config) {
    std::map<std::string, json> out;
    for (const auto &[key, value] : config.items()) {
        if (key == "evaluations") {
            for (const auto &e : value) {
                const std::string name = e.value("name", "evaluation");
                for (const auto &[k, x] : e.items())
                    if (k != "name") flatten_into(name + "." + k, x, out);
            }
        } else {
            flatten_into(key, value, out);
        }
    }
    return out;
}

std::vector<recorded_run> latest_completed(const std::vector<recorded_run> &runs) {
    std::map<std::string, const recorded_run *> newest;
    std::vector<std::string> order;
    for (const auto &r : runs) {
        if (r.manifest.value("status", "") != "ok") continue;
        const std::string hash = r.manifest.value("config_hash", "");
        auto it = newest.find(hash);
        if (it == newest.end()) {
            order.push_back(hash);
            newest[hash] = &r;
        } else if (r.manifest.value("started", "") >= it->second->manifest.value("started", "")) {
            it->second = &r;
        }
    }
    std::vector<recorded_run> out;
    for (const auto &h : order) out.push_back(*newest[h]);
    return out;
}

std::vector<recorded_run> runs_of_experiment(const experiment &exp, const fs::path &results_root) {
    std::map<std::string, size_t> order;
    for (size_t i = 0; i < exp.cells.size(); ++i) order.emplace(exp.cells[i].config_hash(), i);
    std::vector<std::pair<size_t, recorded_run>> found;
    for (const auto &dir : list_run_dirs(experiment_results_dir(results_root, exp.name))) {
        recorded_run r = read_run(dir);
        auto it = order.find(r.manifest.value("config_hash", ""));
        if (it != order.end()) found.emplace_back(it->second, std::move(r));
    }
    std::stable_sort(found.begin(), found.end(), [](const auto &a, const auto &b) { return a.first < b.first; });
    std::vector<recorded_run> out;
    for (auto &f : found) out.push_back(std::move(f.second));
    return out;
}

result_table build_table(const std::vector<recorded_run> &all_runs, const table_options &opt) {
    const auto runs = latest_completed(all_runs);
    if (runs.empty()) fail("no completed runs to tabulate (runs with status \"ok\" in their manifest)");

    std::vector<std::map<std::string, json>> flat;
    for (const auto &r : runs) flat.push_back(flatten_config(r.manifest.value("config", json::object())));

    // Identity columns: requested, or every config field whose value differs between runs,
    // with the model's name and the quantizer's name always shown.
    std::vector<std::string> id_cols = opt.columns;
    if (id_cols.empty()) {
        std::set<std::string> keys;
        for (const auto &f : flat)
            for (const auto &[k, v] : f) keys.insert(k);
        id_cols = {"model.name", "quantizer.name"};
        for (const auto &k : keys) {
            if (std::find(id_cols.begin(), id_cols.end(), k) != id_cols.end()) continue;
            bool differs = false;
            for (const auto &f : flat) {
                auto a = f.find(k);
                auto b = flat.front().find(k);
                json va = a == f.end() ? json() : a->second, vb = b == flat.front().end() ? json() : b->second;
                if (va != vb) { differs = true; break; }
            }
            if (differs) id_cols.push_back(k);
        }
    }

    // Metric columns in order of first appearance.
    std::vector<std::string> metric_cols;
    for (const auto &r : runs)
        for (const auto &m : r.metrics) {
            std::string key = m.value("evaluation", "?") + "." + m.value("metric", "?");
            if (std::find(metric_cols.begin(), metric_cols.end(), key) == metric_cols.end()) metric_cols.push_back(key);
        }
    if (!opt.metric.empty() && std::find(metric_cols.begin(), metric_cols.end(), opt.metric) == metric_cols.end())
        fail("metric '{}' is not in these runs.{}", opt.metric, suggestion_hint(opt.metric, metric_cols));

    // Reference join specification.
    struct join_term { std::string ref_col; std::string field; bool literal; size_t ref_idx; };
    std::vector<join_term> terms;
    size_t ref_value_idx = 0;
    if (opt.reference) {
        const auto &ref = *opt.reference;
        auto col_index = [&](const std::string &name) {
            auto it = std::find(ref.header.begin(), ref.header.end(), name);
            if (it == ref.header.end()) fail("reference table {} has no column '{}'.{}", ref.source, name, suggestion_hint(name, ref.header));
            return static_cast<size_t>(it - ref.header.begin());
        };
        if (opt.join.empty()) fail("a reference table needs join terms (refcol=field) to match its rows to runs");
        for (const auto &j : opt.join) {
            auto pos = j.find('=');
            if (pos == std::string::npos || pos == 0) fail("join term '{}' is not refcol=field or refcol==literal", j);
            bool literal = j.compare(pos, 2, "==") == 0;
            join_term t{j.substr(0, pos), j.substr(pos + (literal ? 2 : 1)), literal, 0};
            t.ref_idx = col_index(t.ref_col);
            terms.push_back(t);
        }
        ref_value_idx = col_index(opt.reference_value);
    }

    result_table t;
    for (const auto &c : id_cols) t.header.push_back(c);
    for (const auto &c : metric_cols) t.header.push_back(c);
    if (opt.reference) {
        t.header.push_back("reference");
        t.header.push_back("delta");
    }
    t.header.push_back("config");

    // The machine-readable view (CSV, JSON) splits "value ± stderr" and carries provenance per row.
    std::set<std::string> with_stderr;
    for (const auto &r : runs)
        for (const auto &m : r.metrics)
            if (m.contains("stderr") && m["stderr"].is_number()) with_stderr.insert(m.value("evaluation", "?") + "." + m.value("metric", "?"));
    for (const auto &c : id_cols) t.machine_header.push_back(c);
    for (const auto &c : metric_cols) {
        t.machine_header.push_back(c);
        if (with_stderr.count(c)) t.machine_header.push_back(c + ".stderr");
    }
    if (opt.reference) {
        t.machine_header.push_back("reference");
        t.machine_header.push_back("delta");
    }
    for (const char *c : {"config_hash", "run_id", "experiment", "git_commit", "git_dirty", "device", "finished"})
        t.machine_header.push_back(c);

    std::set<std::string> commits, devices, datasets, experiments;
    for (size_t i = 0; i < runs.size(); ++i) {
        const auto &r = runs[i];
        std::vector<std::string> row;
        std::vector<json> vals;
        for (const auto &c : id_cols) {
            auto it = flat[i].find(c);
            json v = it == flat[i].end() ? json() : it->second;
            row.push_back(json_to_cell(v));
            vals.push_back(v);
        }
        double our_metric = NAN;
        for (const auto &c : metric_cols) {
            const json *found = nullptr;
            for (const auto &m : r.metrics)
                if (m.value("evaluation", "?") + "." + m.value("metric", "?") == c) found = &m; // last row wins
            const bool has_value = found && found->contains("value");
            const bool has_stderr = has_value && found->contains("stderr") && (*found)["stderr"].is_number();
            const json v = has_value ? (*found)["value"] : json();
            std::string cell = json_to_cell(v);
            if (has_stderr) cell += " ± " + format_number((*found)["stderr"].get<double>(), 2);
            row.push_back(cell);
            vals.push_back(v);
            if (with_stderr.count(c)) vals.push_back(has_stderr ? (*found)["stderr"] : json());
            if (c == opt.metric && v.is_number()) our_metric = v.get<double>();
        }
        if (opt.reference) {
            std::string ref_cell;
            for (const auto &rr : opt.reference->rows) {
                bool match = true;
                for (const auto &term : terms) {
                    std::string want = term.literal ? term.field : [&] {
                        auto it = flat[i].find(term.field);
                        return it == flat[i].end() ? std::string() : json_to_cell(it->second);
                    }();
                    if (rr[term.ref_idx] != want) { match = false; break; }
                }
                if (match) { ref_cell = rr[ref_value_idx]; break; }
            }
            double ref_v = NAN;
            if (!ref_cell.empty()) {
                try { ref_v = std::stod(ref_cell); } catch (...) {}
            }
            row.push_back(ref_cell);
            vals.push_back(std::isnan(ref_v) ? json() : json(ref_v));
            double delta = our_metric - ref_v;
            row.push_back(std::isnan(delta) ? "" : fmt::format("{:+.4g}", delta));
            vals.push_back(std::isnan(delta) ? json() : json(delta));
        }
        const std::string hash = r.manifest.value("config_hash", "");
        const auto &git = r.manifest.value("git", json::object());
        const std::string commit = git.value("commit", std::string());
        const auto &gpu = r.manifest.value("gpu", json());
        const std::string device_kind = r.manifest.value("config", json::object()).value("device", "cpu");
        const std::string device = device_kind == "cuda" && gpu.is_object()
                                       ? fmt::format("{} (driver {})", gpu.value("name", "?"), gpu.value("driver", "?"))
                                       : "CPU: " + r.manifest.value("host", json::object()).value("cpu", std::string("?"));
        row.push_back(hash.substr(0, 8));
        vals.push_back(hash);
        vals.push_back(r.manifest.value("run_id", json()));
        vals.push_back(r.manifest.value("experiment", json()));
        vals.push_back(commit);
        vals.push_back(git.value("dirty", json()));
        vals.push_back(device);
        vals.push_back(r.manifest.value("finished", json()));
        t.cells.push_back(std::move(row));
        t.values.push_back(std::move(vals));

        commits.insert(commit.empty() ? std::string("(not a git checkout)")
                                      : commit.substr(0, 12) + (git.value("dirty", false) ? "+dirty" : ""));
        devices.insert(device);
        experiments.insert(r.manifest.value("experiment", "?"));
        const json run_datasets = r.manifest.value("datasets", json::object()); // items() must not outlive it
        // A corpus is one file (its sha256); a zero-shot task is several files and a template,
        // named by its task_hash (sha256 over every item's document, prompt and target hashes).
        for (const auto &[name, d] : run_datasets.items())
            datasets.insert(d.contains("sha256") || !d.contains("task_hash")
                                ? fmt::format("{} sha256:{}", name, d.value("sha256", std::string("?")).substr(0, 12))
                                : fmt::format("{} task_hash:{}", name, d["task_hash"].get<std::string>().substr(0, 12)));
    }
    auto joined = [](const std::set<std::string> &s) { return join(std::vector<std::string>(s.begin(), s.end()), "; "); };
    // Runs of several experiments may share a table (a baseline beside its successor): name them all.
    t.notes.push_back(fmt::format("runs: {} completed, experiment{} {}", runs.size(), experiments.size() > 1 ? "s" : "", joined(experiments)));
    t.notes.push_back("git: " + joined(commits));
    t.notes.push_back("device: " + joined(devices));
    if (!datasets.empty()) t.notes.push_back("datasets: " + joined(datasets));
    if (opt.reference)
        t.notes.push_back(fmt::format("reference: {} ({}), delta = {} - reference", opt.reference->source, opt.reference_value, opt.metric));
    t.notes.push_back("config = first 8 hex digits of the config hash; the run folders hold the full manifests");
    return t;
}

// ---------------------------------------------------------------------------------------------
// Printers
// ---------------------------------------------------------------------------------------------
std::string render_markdown(const result_table &t) {
    std::vector<size_t> width(t.header.size());
    auto len = [](const std::string &s) { // display width: count UTF-8 code points
        size_t n = 0;
        for (unsigned char c : s) n += (c & 0xC0) != 0x80;
        return n;
    };
    for (size_t c = 0; c < t.header.size(); ++c) {
        width[c] = std::max<size_t>(3, len(t.header[c]));
        for (const auto &row : t.cells) width[c] = std::max(width[c], len(row[c]));
    }
    auto line = [&](const std::vector<std::string> &cells) {
        std::string s = "|";
        for (size_t c = 0; c < cells.size(); ++c) s += " " + cells[c] + std::string(width[c] - len(cells[c]), ' ') + " |";
        return s + "\n";
    };
    std::string out = line(t.header);
    out += "|";
    for (size_t c = 0; c < t.header.size(); ++c) out += std::string(width[c] + 2, '-') + "|";
    out += "\n";
    for (const auto &row : t.cells) out += line(row);
    out += "\n";
    for (const auto &n : t.notes) out += "- " + n + "\n";
    return out;
}

std::string render_csv(const result_table &t) {
    const std::vector<std::string> &header = t.machine_header;
    std::string out;
    for (size_t c = 0; c < header.size(); ++c) {
        if (c) out += ',';
        out += csv_escape(header[c]);
    }
    out += "\n";
    for (const auto &row : t.values) {
        for (size_t c = 0; c < row.size(); ++c) {
            const json &v = row[c];
            std::string s = v.is_null() ? "" : v.is_string() ? v.get<std::string>() : v.is_number_float() ? fmt::format("{}", v.get<double>()) : json_to_cell(v);
            if (c) out += ',';
            out += csv_escape(s);
        }
        out += "\n";
    }
    for (const auto &n : t.notes) out += "# " + n + "\n";
    return out;
}

std::string render_latex(const result_table &t) {
    std::string out = "% generated by qbench table\n";
    for (const auto &n : t.notes) out += "% " + n + "\n";
    out += "\\begin{tabular}{" + std::string(t.header.size(), 'l') + "}\n\\toprule\n";
    std::vector<std::string> h;
    for (const auto &c : t.header) h.push_back(latex_escape(c));
    out += join(h, " & ") + " \\\\\n\\midrule\n";
    for (const auto &row : t.cells) {
        std::vector<std::string> r;
        for (const auto &c : row) {
            std::string e = latex_escape(c);
            auto pos = e.find("±");
            if (pos != std::string::npos) e.replace(pos, std::string("±").size(), "$\\pm$");
            r.push_back(e);
        }
        out += join(r, " & ") + " \\\\\n";
    }
    out += "\\bottomrule\n\\end{tabular}\n";
    return out;
}

std::string render_json(const result_table &t) {
    json rows = json::array();
    for (const auto &row : t.values) {
        json r = json::object();
        for (size_t c = 0; c < row.size(); ++c) r[t.machine_header[c]] = row[c];
        rows.push_back(r);
    }
    return json{{"columns", t.machine_header}, {"rows", rows}, {"notes", t.notes}}.dump(2) + "\n";
}

} // namespace qb
