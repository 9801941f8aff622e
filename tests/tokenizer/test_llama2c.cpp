// llama2.c's tokenizer against run.c's encode/decode (ported in scripts/make_tokenizer_fixtures.py)
// and against the independent golden reference of stories260K (35 tokens, BOS first).
#include "tokenizer/llama2c.h"
#include "tokenizer_fixtures.h"

#include "core/error.h"

using namespace qb;
using namespace qb::test;

TEST_SUITE("tokenizer") {

TEST_CASE("llama2c/stories260K: the golden sentence is 35 tokens, BOS first") {
    const json fx = read_json_file(tokenizer_fixture("stories260k_llama2c.json"));
    const auto file = shared_file(fx["model"].get<std::string>());
    if (!file) return;
    CHECK(sha256_file_hex(*file) == fx["model_sha256"].get<std::string>());
    const auto tok = llama2c_tokenizer::load(*file);
    CHECK(tok->vocab_size() == 512);
    CHECK(tok->kind() == "llama2c");
    const std::string sentence = fx["golden"]["sentence"].get<std::string>();
    const auto ids = tok->encode(sentence); // add_bos_default: run.c's generate passes bos=1
    CHECK(ids.size() == 35);
    CHECK(ids.size() == fx["golden"]["n_tokens"].get<size_t>());
    CHECK(ids.front() == 1);
    CHECK(ids == fx["golden"]["ids"].get<std::vector<int32_t>>());
    CHECK(tok->decode(ids) == sentence); // the space after BOS is dropped, as run.c prints it
    CHECK(tok->token_text(1) == "\n<s>\n");
}

TEST_CASE("llama2c/stories260K: encodings and decodings match run.c") {
    const json fx = read_json_file(tokenizer_fixture("stories260k_llama2c.json"));
    const auto file = shared_file(fx["model"].get<std::string>());
    if (!file) return;
    const auto tok = llama2c_tokenizer::load(*file);
    const size_t n = check_encodings(*tok, fx["cases"], "stories260k_llama2c", true);
    check_decodings(*tok, fx["cases"], "stories260k_llama2c", "decoded_hex");
    check_decodings(*tok, fx["decode_cases"], "stories260k_llama2c decode_cases", "decoded_hex");
    CHECK(n > 100);
    // with BOS, decoding gives back the text: byte fallback covers what the 512 tokens do not
    size_t lossless = 0;
    for (const json &c : fx["cases"]) {
        const std::string text = case_text(c);
        if (bytes_of_hex(c["decoded_hex"].get<std::string>()) != text) continue;
        ++lossless;
        CHECK_MESSAGE(tok->decode(tok->encode(text, true)) == text, quoted(text));
    }
    CHECK(lossless == fx["cases"].size());
}

TEST_CASE("llama2c/malformed: truncated files name the token and the byte; NUL bytes in text are refused") {
    const json fx = read_json_file(tokenizer_fixture("stories260k_llama2c.json"));
    const auto file = shared_file(fx["model"].get<std::string>());
    if (!file) return;
    const std::vector<uint8_t> bytes = read_tokenizer_file(*file);
    llama2c_vocab v;
    REQUIRE(parse_llama2c_tokenizer(bytes, v).ok());
    CHECK(v.tokens.size() == 512);
    CHECK(v.max_token_length == 7);
    // the 512 tokens need the whole file: one byte less and the last token is cut short
    const status cut = parse_llama2c_tokenizer(std::span(bytes).first(bytes.size() - 1), v, 512);
    CHECK(cut.code == status_code::invalid_argument);
    CHECK_MESSAGE(cut.reason.find("token 511: length ") == 0, cut.reason);
    CHECK(parse_llama2c_tokenizer(std::span(bytes).first(2), v).reason == "header: 2 bytes, max_token_length needs 4");
    for (size_t n = 4; n < 4000; n += 7) {
        const status st = parse_llama2c_tokenizer(std::span(bytes).first(n), v, 512);
        REQUIRE_MESSAGE(!st.ok(), "a " << n << "-byte prefix parsed");
        CHECK_MESSAGE(st.reason.find(" at byte ") != std::string::npos, st.reason);
    }
    const auto tok = llama2c_tokenizer::load(*file);
    CHECK_THROWS_WITH_AS(tok->encode(std::string("ab\0c", 4), true),
                         "llama2.c tokenizer: text has a NUL byte at offset 2 (run.c's C string would end there)", error);
    CHECK_THROWS_WITH_AS(tok->decode(std::vector<int32_t>{512}), "llama2c tokenizer: token id 512 outside [0, 512)", error);
}

} // TEST_SUITE
