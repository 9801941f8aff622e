// Files of the data directory, found by relative path and checked against the SHA256SUMS that the
// data directory ships (the nearest one in the file's folder or above, up to the data root).
#pragma once
#include "core/json.h"
#include "core/paths.h"

#include <filesystem>
#include <string>

namespace qb {

struct data_file_info {
    std::filesystem::path path;  // absolute path read
    std::string relative;        // as requested ("wikitext2/wiki.test.raw")
    std::string sha256;
    uint64_t bytes = 0;
    std::string verified;        // "SHA256SUMS match (<sums file>)" | "not listed in <sums file>" | "no SHA256SUMS"
    json to_json() const;        // for the manifest's datasets/inputs
};

// Resolves `relative` in the data directory, hashes the file (cached per path, size and mtime
// for the life of the process) and checks it against SHA256SUMS. A missing file or a hash
// mismatch is a qb::error naming the file, the directory and where that directory came from.
data_file_info data_file_verified(const data_dir_choice &dir, const std::string &relative);

// The datasets/ folder of a data directory (the data directory holds datasets/ and models/):
// evaluation data files (wikitext2/wiki.test.raw, task files) are named relative to it.
data_dir_choice datasets_dir(const data_dir_choice &data_dir);

// Looks up the expected hash of `file` in a SHA256SUMS file ("<hex> *<relative path>" or
// "<hex>  <relative path>" lines). Returns "" when not listed.
std::string sha256sums_lookup(const std::filesystem::path &sums_file, const std::string &relative_to_sums);

} // namespace qb
