// Where qbench looks for configs, data and results. Data and models are never in the repository:
// they are read in place from a data directory (../shared on the team's machines).
#pragma once
#include <filesystem>
#include <string>
#include <vector>

namespace qb {

struct data_dir_choice {
    std::filesystem::path path;
    std::string origin; // "--data-dir", "experiment data_dir", "QBENCH_DATA_DIR", "default (<source>/../shared)"
};

// Order: command line, experiment file (relative to it), $QBENCH_DATA_DIR, <source>/../shared.
data_dir_choice resolve_data_dir(const std::string &cli_value, const std::string &experiment_value,
                                 const std::filesystem::path &experiment_file);

// A file inside the data directory; a missing file is an error that says what was looked for,
// where, and how to point qbench elsewhere.
std::filesystem::path data_file(const data_dir_choice &dir, const std::string &relative);

// configs/ of this checkout ($QBENCH_CONFIG_DIR overrides).
std::filesystem::path config_dir();

} // namespace qb
