#include "core/paths.h"

#include "core/environment.h"
#include "core/error.h"

#include <cstdlib>

namespace qb {

namespace fs = std::filesystem;

data_dir_choice resolve_data_dir(const std::string &cli_value, const std::string &experiment_value,
                                 const fs::path &experiment_file) {
    if (!cli_value.empty()) return {cli_value, "--data-dir"};
    if (!experiment_value.empty()) {
        fs::path p = experiment_value;
        if (p.is_relative()) p = experiment_file.parent_path() / p;
        return {p, "data_dir in " + experiment_file.string()};
    }
    if (const char *env = std::getenv("QBENCH_DATA_DIR"); env && *env) return {env, "QBENCH_DATA_DIR"};
    return {source_dir().parent_path() / "shared", "default (<source>/../shared)"};
}

fs::path data_file(const data_dir_choice &dir, const std::string &relative) {
    fs::path p = dir.path / relative;
    if (!fs::exists(p))
        fail("data file not found: {}\n  data directory: {} (from {})\n  ---> HINT: set QBENCH_DATA_DIR, pass --data-dir, or set "
             "data_dir in the experiment file",
             p.string(), dir.path.string(), dir.origin);
    return p;
}

fs::path config_dir() {
    if (const char *env = std::getenv("QBENCH_CONFIG_DIR"); env && *env) return env;
    return source_dir() / "configs";
}

} // namespace qb
