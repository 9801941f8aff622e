// SentencePiece BPE against the `sentencepiece` package: LLaMA-2's tokenizer.model (data dir),
// two small models trained by scripts/make_tokenizer_fixtures.py, the same vocabularies fed as
// GGUF arrays, and malformed .model files.
#include "tokenizer/sentencepiece.h"
#include "tokenizer_fixtures.h"

#include "core/error.h"

#include <chrono>

using namespace qb;
using namespace qb::test;

namespace {

// All texts of a fixture: encodings, decodings of the encodings, round trips, decode cases.
void check_fixture(const tokenizer &tok, const json &fx, const std::string &name, size_t min_lossless) {
    const size_t n = check_encodings(tok, fx["cases"], name);
    check_decodings(tok, fx["cases"], name, "decoded");
    const size_t lossless = check_round_trips(tok, fx["cases"], name, "decoded");
    const size_t n_decode = check_decodings(tok, fx["decode_cases"], name + " decode_cases", "text");
    MESSAGE(name << ": " << n << " encodings, " << lossless << " round trips, " << n_decode << " decodings compared");
    CHECK(n > 100); // the handwritten texts, 50 wikitext lines, PIQA/HellaSwag strings, malformed UTF-8
    CHECK(lossless >= min_lossless); // what the reference itself round-trips (no squeezed spaces, no <unk>)
}

gguf_tokenizer_metadata as_gguf(const spm_vocab &v) {
    gguf_tokenizer_metadata m;
    m.model = "llama";
    m.tokens = v.pieces;
    m.scores = v.scores;
    for (const auto t : v.types) m.token_types.push_back(int32_t(t));
    m.bos_id = v.bos_id;
    m.eos_id = v.eos_id;
    m.add_space_prefix = v.add_dummy_prefix;
    return m;
}

std::vector<uint8_t> bytes_of(std::string_view s) { return {s.begin(), s.end()}; }

} // namespace

TEST_SUITE("tokenizer") {

TEST_CASE("sentencepiece/llama2: tokenizer.model parses to LLaMA-2's 32000 pieces") {
    const json fx = read_json_file(tokenizer_fixture("llama2_spm.json"));
    const auto model = shared_file(fx["model"].get<std::string>());
    if (!model) return;
    CHECK(sha256_file_hex(*model) == fx["model_sha256"].get<std::string>());
    const auto tok = sentencepiece_tokenizer::load(*model);
    const spm_vocab &v = tok->vocab();
    CHECK(tok->vocab_size() == 32000);
    CHECK(tok->bos_id() == 1);
    CHECK(tok->eos_id() == 2);
    CHECK(tok->add_bos_default());
    CHECK(v.byte_fallback);
    CHECK(v.add_dummy_prefix);
    CHECK_FALSE(v.remove_extra_whitespaces);
    for (const auto &[id, piece] : fx["pieces"].items()) CHECK(tok->token_text(std::stoi(id)) == piece.get<std::string>());
    CHECK(v.types[0] == spm_piece_type::unknown);
    CHECK(v.types[1] == spm_piece_type::control);
    CHECK(v.types[3 + 0x0A] == spm_piece_type::byte);
    CHECK(v.scores[259] == -1e9f); // "▁▁": merged last
    CHECK(v.scores[260] == -1.0f); // "▁t": the first merge
    CHECK(tok->normalize("Hello  world") == "\xE2\x96\x81Hello\xE2\x96\x81\xE2\x96\x81world");
    CHECK(tok->encode("Hello world") == std::vector<int32_t>{1, 15043, 3186});
}

TEST_CASE("sentencepiece/llama2: encodings and decodings match the sentencepiece package") {
    const json fx = read_json_file(tokenizer_fixture("llama2_spm.json"));
    const auto model = shared_file(fx["model"].get<std::string>());
    if (!model) return;
    const auto tok = sentencepiece_tokenizer::load(*model);
    check_fixture(*tok, fx, "llama2_spm", 120);
}

TEST_CASE("sentencepiece/llama2: all of wiki.test.raw as one text, id for id (sha256 of the ids)") {
    const json fx = read_json_file(tokenizer_fixture("llama2_spm.json"));
    const auto model = shared_file(fx["model"].get<std::string>());
    const auto wiki = shared_file(fx["wikitext"]["file"].get<std::string>());
    if (!model || !wiki) return;
    const auto tok = sentencepiece_tokenizer::load(*model);
    const std::string text = read_text_file(*wiki);
    const auto start = std::chrono::steady_clock::now();
    const auto ids = tok->encode(text, false);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    MESSAGE("llama2 wiki.test.raw: " << ids.size() << " tokens in " << seconds << " s");
    const auto first = fx["wikitext"]["first_ids"].get<std::vector<int32_t>>();
    REQUIRE(ids.size() >= first.size());
    CHECK(std::vector<int32_t>(ids.begin(), ids.begin() + first.size()) == first);
    CHECK(ids.size() == fx["wikitext"]["n_tokens"].get<size_t>());
    CHECK(ids_sha256(ids) == fx["wikitext"]["ids_sha256"].get<std::string>());
    CHECK(tok->decode(ids) == text); // lossless: no U+2581 and valid UTF-8 in the file
}

TEST_CASE("sentencepiece/llama2: the same vocabulary as GGUF arrays (tokenizer.ggml.model = llama) encodes identically") {
    const json fx = read_json_file(tokenizer_fixture("llama2_spm.json"));
    const auto model = shared_file(fx["model"].get<std::string>());
    if (!model) return;
    const auto from_model = sentencepiece_tokenizer::load(*model);
    const auto from_gguf = tokenizer_from_gguf(as_gguf(from_model->vocab()));
    CHECK(from_gguf->kind() == "sentencepiece-bpe");
    CHECK(from_gguf->bos_id() == 1);
    CHECK(from_gguf->add_bos_default());
    check_encodings(*from_gguf, fx["cases"], "llama2_spm via GGUF arrays");
    check_decodings(*from_gguf, fx["decode_cases"], "llama2_spm via GGUF arrays", "text");

    // An UNUSED piece that no merge can form makes encoding merge the whole text at once instead
    // of word by word (see the constructor): both paths must give the reference ids.
    gguf_tokenizer_metadata m = as_gguf(from_model->vocab());
    m.tokens.push_back("<qbench-never-formed>");
    m.scores.push_back(0);
    m.token_types.push_back(int32_t(spm_piece_type::unused));
    check_encodings(*tokenizer_from_gguf(m), fx["cases"], "llama2_spm merged as one sequence");
}

TEST_CASE("sentencepiece/tiny_a: user-defined and UNUSED pieces, <unk> runs without byte fallback, squeezed spaces") {
    const json fx = read_json_file(tokenizer_fixture("spm_tiny_a.json"));
    const auto tok = sentencepiece_tokenizer::load(tokenizer_fixture("spm_tiny_a.model"));
    const spm_vocab &v = tok->vocab();
    CHECK(tok->vocab_size() == fx["vocab_size"].get<int32_t>());
    CHECK_FALSE(v.byte_fallback);
    CHECK(v.remove_extra_whitespaces);
    CHECK(v.unk_surface == "<?>");
    // the paths this model exists to exercise are really in it
    size_t unused = 0, user_defined = 0;
    for (const auto t : v.types) {
        unused += t == spm_piece_type::unused;
        user_defined += t == spm_piece_type::user_defined;
    }
    CHECK(unused == fx["unused_pieces"].size());
    CHECK(unused == 10);
    CHECK(user_defined == 2);
    CHECK(tok->normalize("  a   b  ") == "\xE2\x96\x81" "a\xE2\x96\x81" "b");
    check_fixture(*tok, fx, "spm_tiny_a", 30);
}

TEST_CASE("sentencepiece/tiny_b: byte fallback, no dummy prefix, a control piece") {
    const json fx = read_json_file(tokenizer_fixture("spm_tiny_b.json"));
    const auto tok = sentencepiece_tokenizer::load(tokenizer_fixture("spm_tiny_b.model"));
    CHECK(tok->vocab().byte_fallback);
    CHECK_FALSE(tok->vocab().add_dummy_prefix);
    CHECK(tok->normalize(" a") == "\xE2\x96\x81" "a");
    check_fixture(*tok, fx, "spm_tiny_b", 120);
}

TEST_CASE("sentencepiece/malformed: truncations of a .model are refused, naming the field and byte") {
    const std::vector<uint8_t> bytes = read_tokenizer_file(tokenizer_fixture("spm_tiny_a.model"));
    REQUIRE(bytes.size() > 1000);
    spm_vocab v;
    REQUIRE(parse_sentencepiece_model(bytes, v).ok());
    // The file is pieces (field 1), trainer_spec (2), normalizer_spec (3, 14 bytes + 2 of tag and
    // length). Cutting inside a field gives a message naming the byte; cutting between pieces leaves
    // no trainer_spec, so model_type is proto2's default UNIGRAM; only the cut that drops the whole
    // normalizer_spec is a valid (default-normalizer) model.
    size_t invalid = 0, unsupported = 0;
    for (size_t n = 1; n < bytes.size(); ++n) {
        const status st = parse_sentencepiece_model(std::span(bytes).first(n), v);
        if (st.ok()) {
            CHECK(n == bytes.size() - 16);
            continue;
        }
        if (st.code == status_code::invalid_argument) {
            ++invalid;
            CHECK_MESSAGE(st.reason.find(" at byte ") != std::string::npos, st.reason);
        } else {
            ++unsupported;
            CHECK_MESSAGE(st.reason.find("UNIGRAM") != std::string::npos, st.reason);
        }
    }
    CHECK(invalid > bytes.size() / 2);
    CHECK(unsupported > 100); // one per piece boundary

    // pieces[0] { piece: "a", score as a varint instead of fixed32 }
    const status st = parse_sentencepiece_model(bytes_of("\x0A\x05\x0A\x01" "a\x10\x05"), v);
    CHECK(st.code == status_code::invalid_argument);
    CHECK(st.reason == "ModelProto.pieces[0]: score (field 2): expected wire type 5 (fixed32), got 0 (varint) at byte 5");
    // a length running past the end of the file
    const status st2 = parse_sentencepiece_model(bytes_of("\x0A\x7F\x0A\x01" "a"), v);
    CHECK(st2.reason == "ModelProto: pieces (field 1): length 127 runs past the end of the message (3 bytes left) at byte 0");
    // an unknown piece type
    const status st3 = parse_sentencepiece_model(bytes_of("\x0A\x05\x0A\x01" "a\x18\x09"), v);
    CHECK(st3.reason == "ModelProto.pieces[0]: type (field 3): unknown piece type 9 (NORMAL=1 .. BYTE=6) at byte 5");
}

TEST_CASE("sentencepiece/unsupported: unigram models and normalization rules are refused by name") {
    spm_vocab v;
    // trainer_spec { model_type: UNIGRAM } after one piece
    const status unigram = parse_sentencepiece_model(bytes_of("\x0A\x03\x0A\x01" "a\x12\x02\x18\x01"), v);
    CHECK(unigram.code == status_code::unsupported_option);
    CHECK(unigram.reason == "trainer_spec.model_type is UNIGRAM (1); only BPE (2) is implemented");
    // BPE, normalizer_spec { name: "nfkc", precompiled_charsmap: 3 bytes }
    const status rules =
        parse_sentencepiece_model(bytes_of("\x0A\x03\x0A\x01" "a\x12\x02\x18\x02\x1A\x0B\x0A\x04nfkc\x12\x03xyz"), v);
    CHECK(rules.code == status_code::unsupported_option);
    CHECK(rules.reason.find("normalizer_spec 'nfkc' has a precompiled_charsmap (3 bytes)") == 0);
    CHECK_THROWS_WITH_AS(sentencepiece_tokenizer::load(tokenizer_fixture("missing.model")),
                         doctest::Contains("missing.model: cannot open tokenizer file"), error);
    CHECK_THROWS_WITH_AS(sentencepiece_tokenizer::load(tokenizer_fixture("bpe_tiny/tokenizer_config.json")),
                         doctest::Contains("tokenizer_config.json: not a SentencePiece model qbench can use:"), error);
}

TEST_CASE("sentencepiece/vocabulary checks: duplicates, missing <unk> or byte pieces") {
    spm_vocab v;
    v.pieces = {"<unk>", "a", "a"};
    v.scores = {0, 0, 0};
    v.types = {spm_piece_type::unknown, spm_piece_type::normal, spm_piece_type::normal};
    v.byte_fallback = false;
    CHECK_THROWS_WITH_AS(sentencepiece_tokenizer{v}, "sentencepiece vocabulary: piece 'a' is defined twice (ids 1 and 2)", error);
    v.pieces = {"x", "a", "b"};
    v.types = {spm_piece_type::normal, spm_piece_type::normal, spm_piece_type::normal};
    CHECK_THROWS_WITH_AS(sentencepiece_tokenizer{v}, "sentencepiece vocabulary: no UNKNOWN piece (<unk>) among 3 pieces", error);
    v.types[0] = spm_piece_type::unknown;
    v.byte_fallback = true;
    CHECK_THROWS_WITH_AS(sentencepiece_tokenizer{v}, "sentencepiece vocabulary: byte_fallback is on but byte piece <0x00> is missing", error);
    v.byte_fallback = false;
    v.add_dummy_prefix = false;
    const sentencepiece_tokenizer tok(v);
    // no byte fallback: "▁" and "c" are unknown, and a run of unknown characters is one <unk>
    CHECK(tok.encode("a ccc b", false) == std::vector<int32_t>{1, 0, 2});
    CHECK(tok.decode(std::vector<int32_t>{1, 0, 2}) == "a \xE2\x81\x87 b");
    CHECK_THROWS_WITH_AS(tok.decode(std::vector<int32_t>{3}), "sentencepiece-bpe tokenizer: token id 3 outside [0, 3)", error);
}

} // TEST_SUITE
