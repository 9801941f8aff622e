// Tables from recorded runs (metrics.jsonl + manifest.json), optionally beside reference numbers
// (e.g. the paper's CSV) with the delta. One table model feeds the markdown, CSV, LaTeX and JSON
// printers, so the formats can never disagree.
#pragma once
#include "core/json.h"
#include "core/run_record.h"

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace qb {

struct experiment;

struct reference_table {
    std::vector<std::string> header;
    std::vector<std::vector<std::string>> rows;
    std::string source; // file name, for the provenance note
};

// Reads a CSV (RFC 4180 quoting; '#' lines are comments). `melt` non-empty: every column not in
// `keep` becomes a row (melt=<column name>, value=<cell>), turning a wide table into a long one.
reference_table reference_read_csv(const std::filesystem::path &path);
reference_table reference_melt(const reference_table &wide, const std::string &field, const std::vector<std::string> &keep,
                               const std::string &value_column = "value");

struct table_options {
    std::vector<std::string> columns;     // identity columns; empty = those that differ between runs
    std::optional<reference_table> reference;
    std::string reference_value = "value"; // reference column with the number
    std::vector<std::string> join;        // "refcol=field" (match) or "refcol==literal" (filter)
    std::string metric;                   // "evaluation.metric" compared with the reference
};

struct result_table {
    std::vector<std::string> header;                 // md / LaTeX columns
    std::vector<std::vector<std::string>> cells;     // formatted for md/latex ("0.123 ± 0.004")
    std::vector<std::string> machine_header;         // CSV / JSON columns: stderr split out, provenance per row
    std::vector<std::vector<json>> values;           // raw values under machine_header, null if empty
    std::vector<std::string> notes;                  // provenance lines printed under the table
};

// Flattens a run's resolved config to "model.config", "quantizer.w_bits", "kl_divergence.tokens".
std::map<std::string, json> flatten_config(const json &config);

// Keeps, per config hash, the newest run whose status is "ok".
std::vector<recorded_run> latest_completed(const std::vector<recorded_run> &runs);

// The table defaults an experiment file declares (reference CSV resolved relative to the file;
// a wide CSV is melted on reference_melt, keeping the columns its join terms name).
table_options table_options_from(const experiment &exp);

// The records of an experiment's current cells (every record whose config hash is one of them),
// in the experiment's cell order, then oldest first.
std::vector<recorded_run> runs_of_experiment(const experiment &exp, const std::filesystem::path &results_root);

result_table build_table(const std::vector<recorded_run> &runs, const table_options &options);

std::string render_markdown(const result_table &table);
std::string render_csv(const result_table &table);
std::string render_latex(const result_table &table);
std::string render_json(const result_table &table);

} // namespace qb
