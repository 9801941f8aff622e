// Helpers shared by the doctest suites: scratch folders and files.
#pragma once
#include <filesystem>
#include <fstream>
#include <random>
#include <string>

namespace qb::test {

// A fresh folder under the system temp dir, removed when the object goes away.
class scratch_dir {
public:
    scratch_dir() {
        std::random_device rd;
        path_ = std::filesystem::temp_directory_path() / ("qbench-test-" + std::to_string(rd()) + std::to_string(rd()));
        std::filesystem::create_directories(path_);
    }
    ~scratch_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    const std::filesystem::path &path() const { return path_; }
    std::filesystem::path write(const std::string &name, const std::string &text) const {
        auto p = path_ / name;
        std::filesystem::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << text;
        return p;
    }

private:
    std::filesystem::path path_;
};

} // namespace qb::test
