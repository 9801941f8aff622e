// `qbench run`: expands an experiment into cells, skips cells already recorded, runs the rest
// (one model load per group), writes a run record per cell, and prints the result table.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace qb {

struct run_options {
    std::filesystem::path experiment_file;
    std::filesystem::path results_root = "results";
    std::string data_dir;          // --data-dir (empty: see resolve_data_dir)
    bool force = false;            // re-run cells that already have a completed record
    bool dry_run = false;          // print the cells and their hashes, run nothing
    std::vector<std::string> argv; // recorded in the manifests
};

struct run_summary {
    int completed = 0, skipped_done = 0, skipped_unsupported = 0, failed = 0;
};

run_summary run_experiment(const run_options &options);

} // namespace qb
