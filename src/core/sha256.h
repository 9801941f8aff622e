// SHA-256 (FIPS 180-4) for config hashes, dataset and model file hashes, and token-stream hashes.
// Self-contained so that hashing never depends on which crypto library a machine has.
#pragma once
#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

namespace qb {

class sha256 {
public:
    sha256();
    void update(const void *data, size_t size);
    void update(std::string_view text) { update(text.data(), text.size()); }
    std::array<uint8_t, 32> digest(); // finalizes; the object must not be updated afterwards
    std::string hex_digest();

private:
    void compress(const uint8_t *block);
    std::array<uint32_t, 8> state_;
    std::array<uint8_t, 64> buffer_{};
    size_t buffered_ = 0;
    uint64_t total_bytes_ = 0;
};

std::string sha256_hex(std::string_view text);
// Streams the file; throws qb::error naming the path if it cannot be read.
std::string sha256_file_hex(const std::filesystem::path &path);

} // namespace qb
