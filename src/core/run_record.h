// The record of one experiment cell: results/<experiment>/<UTC>_<cfghash8>/ with
//   manifest.json  — provenance and status (rewritten atomically at start and end)
//   metrics.jsonl  — one JSON object per measurement, appended and flushed as produced
//   log.txt        — everything the run printed
// A failed or interrupted run keeps its manifest with status "failed"/"running" and the error.
#pragma once
#include "core/experiment.h"
#include "core/json.h"

#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace qb {

inline constexpr int manifest_schema_version = 1;

class run_record {
public:
    // Creates the folder and writes the manifest with status "running".
    run_record(const std::filesystem::path &results_root, const experiment &exp, const experiment_cell &cell,
               const std::vector<std::string> &argv);
    ~run_record(); // an unfinished record is closed as failed ("interrupted")
    run_record(const run_record &) = delete;
    run_record &operator=(const run_record &) = delete;

    const std::filesystem::path &dir() const { return dir_; }
    const std::string &run_id() const { return run_id_; }
    const std::string &config_hash() const { return config_hash_; }

    // Adds run_id and config_hash, appends one line to metrics.jsonl and flushes it.
    void add_metric(json row);
    // Provenance that becomes known during the run: datasets, inputs (model files), notes.
    void set_field(const std::string &key, json value);
    void add_dataset(const std::string &name, json info);
    void add_input(const std::string &name, json info);

    void finish_ok();
    void finish_failed(const std::string &error);
    // The cell cannot run here (a shape a kernel refuses, no GPU): not an error, not a result.
    void finish_skipped(const std::string &reason);
    const json &manifest() const { return manifest_; }

private:
    void write_manifest();
    void close(const std::string &status, const std::string &error);
    std::filesystem::path dir_;
    std::string run_id_, config_hash_;
    json manifest_;
    std::FILE *metrics_ = nullptr;
    std::FILE *log_ = nullptr;
    size_t n_metrics_ = 0;
    bool finished_ = false;
};

// A recorded run as read back from disk.
struct recorded_run {
    std::filesystem::path dir;
    json manifest;
    std::vector<json> metrics;
};

std::filesystem::path experiment_results_dir(const std::filesystem::path &results_root, const std::string &experiment);
// Run folders under an experiment's results folder, oldest first.
std::vector<std::filesystem::path> list_run_dirs(const std::filesystem::path &experiment_dir);
// Newest run of this config hash whose manifest says "ok", if any (the resume check).
std::optional<std::filesystem::path> find_completed_run(const std::filesystem::path &experiment_dir, const std::string &config_hash);
// Reads manifest.json and metrics.jsonl; throws qb::error naming the file and line on bad JSON.
recorded_run read_run(const std::filesystem::path &dir);
// Writes text to path via a temporary file and rename, so readers never see half a file.
void write_file_atomic(const std::filesystem::path &path, const std::string &text);

} // namespace qb
