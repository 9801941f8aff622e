// A whole file mapped read-only into memory. Model readers hand out pointers into the mapping
// instead of copying tensors, so opening a multi-GB checkpoint costs a header parse, and pages
// are read (and shared with the page cache) only when a tensor is touched.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace qb {

class mapped_file {
public:
    mapped_file() = default;
    // Throws qb::error naming the path and the system's reason ("No such file or directory").
    explicit mapped_file(const std::filesystem::path &path);
    ~mapped_file();
    mapped_file(mapped_file &&other) noexcept;
    mapped_file &operator=(mapped_file &&other) noexcept;
    mapped_file(const mapped_file &) = delete;
    mapped_file &operator=(const mapped_file &) = delete;

    // The mapping never moves, even when the object does: views into it stay valid for as
    // long as some mapped_file owns it.
    const uint8_t *data() const { return data_; }
    size_t size() const { return size_; }
    const std::filesystem::path &path() const { return path_; }

private:
    void release() noexcept;
    std::filesystem::path path_;
    const uint8_t *data_ = nullptr; // nullptr for an empty file (mmap refuses length 0)
    size_t size_ = 0;
};

} // namespace qb
