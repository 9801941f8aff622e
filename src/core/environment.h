// Provenance of a run: source revision, build, library versions, host and GPU. Collected once per
// process and copied into every manifest.
#pragma once
#include "core/json.h"

#include <filesystem>
#include <string>

namespace qb {

struct git_state {
    std::string commit;       // full hash of HEAD at run time ("" if not a git checkout)
    bool dirty = false;       // uncommitted changes to tracked files at run time
    std::string source;       // "git", or "QBENCH_GIT_COMMIT" when the tree has no .git (stated by the caller)
    std::string build_describe; // `git describe --dirty` when the binary was built
};

git_state git_state_of(const std::filesystem::path &source_dir);

// {"git":…, "build":…, "versions":…, "host":…, "gpu":…} — see docs/results-schema.md.
json environment_json();

// The directory the binary was built from (QBENCH_SOURCE_DIR), used for git and defaults.
std::filesystem::path source_dir();

// Runs a shell command, returns its stdout (trailing newline removed) or "" on failure.
std::string run_capture(const std::string &command);

} // namespace qb
