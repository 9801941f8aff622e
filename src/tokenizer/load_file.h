// How each tokenizer loads its file: read it, parse the bytes into a vocabulary (a status that
// names the field and byte), build the tokenizer (qb::error for an inconsistent vocabulary).
// Every error message starts with the file.
#pragma once
#include "core/error.h"
#include "core/status.h"
#include "tokenizer/tokenizer.h"

namespace qb::detail {

// parse(std::span<const uint8_t> bytes, Vocab &out) -> status; `what` completes "not <what> qbench can use".
template <class Tokenizer, class Vocab, class Parse>
std::unique_ptr<Tokenizer> load_tokenizer_file(const std::filesystem::path &file, std::string_view what, Parse &&parse) {
    const std::vector<uint8_t> bytes = read_tokenizer_file(file);
    Vocab vocab;
    if (const status st = parse(std::span<const uint8_t>(bytes), vocab); !st)
        fail("{}: not {} qbench can use: {}", file.string(), what, st.reason);
    try {
        return std::make_unique<Tokenizer>(std::move(vocab));
    } catch (const error &e) {
        fail("{}: {}", file.string(), e.what());
    }
}

} // namespace qb::detail
