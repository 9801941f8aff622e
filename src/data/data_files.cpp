#include "data/data_files.h"

#include "core/error.h"
#include "core/sha256.h"
#include "core/text.h"

#include <fstream>
#include <map>
#include <mutex>

namespace qb {

namespace fs = std::filesystem;

json data_file_info::to_json() const {
    return {{"path", path.string()}, {"relative", relative}, {"sha256", sha256}, {"bytes", bytes}, {"verified", verified}};
}

std::string sha256sums_lookup(const fs::path &sums_file, const std::string &relative) {
    std::ifstream in(sums_file);
    std::string line;
    while (std::getline(in, line)) {
        auto t = trim(line);
        if (t.size() < 66 || t.front() == '#') continue;
        std::string hash(t.substr(0, 64));
        std::string_view rest = trim(t.substr(64));
        if (!rest.empty() && rest.front() == '*') rest.remove_prefix(1); // binary-mode marker
        if (rest == relative) return hash;
    }
    return "";
}

namespace {

std::string cached_hash(const fs::path &p) {
    static std::mutex mutex;
    static std::map<std::string, std::pair<std::string, std::string>> cache; // path -> (size:mtime, hash)
    std::error_code ec;
    const auto stamp = std::to_string(fs::file_size(p, ec)) + ":" +
                       std::to_string(fs::last_write_time(p, ec).time_since_epoch().count());
    {
        std::lock_guard lock(mutex);
        auto it = cache.find(p.string());
        if (it != cache.end() && it->second.first == stamp) return it->second.second;
    }
    std::string h = sha256_file_hex(p);
    std::lock_guard lock(mutex);
    cache[p.string()] = {stamp, h};
    return h;
}

} // namespace

data_dir_choice datasets_dir(const data_dir_choice &data_dir) {
    return {data_dir.path / "datasets", data_dir.origin + ", its datasets/ folder"};
}

data_file_info data_file_verified(const data_dir_choice &dir, const std::string &relative) {
    data_file_info info;
    info.relative = relative;
    info.path = fs::absolute(data_file(dir, relative)); // throws with the hint when missing
    info.bytes = fs::file_size(info.path);
    info.sha256 = cached_hash(info.path);
    info.verified = "no SHA256SUMS";
    // The nearest SHA256SUMS from the file's folder up to the data root lists it relative to itself.
    const fs::path root = fs::absolute(dir.path).lexically_normal();
    for (fs::path folder = info.path.parent_path().lexically_normal();; folder = folder.parent_path()) {
        const fs::path sums = folder / "SHA256SUMS";
        if (fs::exists(sums)) {
            const std::string rel = info.path.lexically_normal().lexically_relative(folder).generic_string();
            const std::string expected = sha256sums_lookup(sums, rel);
            if (expected.empty()) {
                info.verified = "not listed in " + sums.string();
            } else if (expected != info.sha256) {
                fail("data file {} does not match {}: sha256 {} expected, {} found\n  ---> HINT: the copy is damaged or "
                     "a different version; restore it or point the data directory elsewhere ({})",
                     info.path.string(), sums.string(), expected, info.sha256, dir.origin);
            } else {
                info.verified = "SHA256SUMS match (" + sums.string() + ")";
            }
            break;
        }
        if (folder == root || folder == folder.parent_path() || folder.string().size() <= root.string().size()) break;
    }
    return info;
}

} // namespace qb
