// Byte-level BPE against HF `tokenizers`: SmolLM2's GGUF vocabulary under llama.cpp's "smollm",
// "gpt2" and "llama-bpe" pre-tokenizers, and a small tokenizer.json trained by
// scripts/make_tokenizer_fixtures.py (LLaMA-3 split, special tokens with lstrip/rstrip) with
// variants of its pre-tokenizer. Plus the hand-written regex matchers and Unicode classes.
#include "tokenizer/byte_bpe.h"
#include "tokenizer/unicode.h"
#include "tokenizer_fixtures.h"

#include "core/error.h"

using namespace qb;
using namespace qb::test;

namespace {

using pieces = std::vector<std::string>;

pieces split(std::string_view text, split_regex regex) {
    std::vector<std::string_view> out;
    split_by_regex(text, regex, out);
    return {out.begin(), out.end()};
}

void check_variant(const tokenizer &tok, const json &variant, const std::string &name) {
    const size_t n = check_encodings(tok, variant["cases"], name);
    check_decodings(tok, variant["cases"], name, "decoded");
    const size_t lossless = check_round_trips(tok, variant["cases"], name, "decoded");
    MESSAGE(name << ": " << n << " encodings, " << lossless << " round trips compared");
    CHECK(n > 100);
    if (variant.contains("decode_cases")) check_decodings(tok, variant["decode_cases"], name + " decode_cases", "text");
}

} // namespace

TEST_SUITE("tokenizer") {

TEST_CASE("byte_bpe/regex: GPT-2 and LLaMA-3 split patterns on hand-checked strings") {
    // GPT-2: a space run before a word keeps its last space for the word; contractions split off
    CHECK(split("Hello world  123", split_regex::gpt2) == pieces{"Hello", " world", " ", " 123"});
    CHECK(split("don't  stop\n\n", split_regex::gpt2) == pieces{"don", "'t", " ", " stop", "\n\n"});
    CHECK(split("DON'T x", split_regex::gpt2) == pieces{"DON", "'", "T", " x"}); // case-sensitive
    CHECK(split("a...b ?!", split_regex::gpt2) == pieces{"a", "...", "b", " ?!"});
    // LLaMA-3: one punctuation or space joins the word after it, digits in threes, newlines kept
    // with the whitespace before them, contractions case-insensitive (ſ folds to s)
    CHECK(split("Hello world  123", split_regex::llama3) == pieces{"Hello", " world", " ", " ", "123"});
    CHECK(split("DON'T 1234567 (x)", split_regex::llama3) == pieces{"DON", "'T", " ", "123", "456", "7", " (", "x", ")"});
    CHECK(split("a.\n\n  b", split_regex::llama3) == pieces{"a", ".\n\n", " ", " b"});
    CHECK(split("x \n y", split_regex::llama3) == pieces{"x", " \n", " y"});
    CHECK(split("'\xC5\xBF", split_regex::llama3) == pieces{"'\xC5\xBF"});
    CHECK(split("caf\xC3\xA9\xE2\x80\x83!", split_regex::gpt2) == pieces{"caf\xC3\xA9", "\xE2\x80\x83", "!"}); // é is a letter, U+2003 a space
    std::vector<std::string_view> out;
    split_digits("ab12 3", true, out);
    CHECK(pieces(out.begin(), out.end()) == pieces{"ab", "1", "2", " ", "3"});
    out.clear();
    split_digits("ab12 3", false, out);
    CHECK(pieces(out.begin(), out.end()) == pieces{"ab", "12", " ", "3"});
}

TEST_CASE("byte_bpe/unicode: classes from Oniguruma's tables, UTF-8 repair policies") {
    CHECK(is_letter(U'\u00E9'));
    CHECK(is_letter(U'\u4E00'));
    CHECK(is_letter(U'\U000105C0')); // Todhri (Unicode 16): absent from Python 3.11's unicodedata
    CHECK_FALSE(is_letter(U'_'));
    CHECK(is_number(U'\u0663'));   // Arabic-Indic three
    CHECK(is_number(U'\u2167'));   // Roman numeral eight (Nl)
    CHECK_FALSE(is_number(U'\U00011DE0'));
    CHECK(is_numeric(U'\U00011DE0')); // Unicode 17 digit: Rust's tables know it, Oniguruma's do not
    CHECK(is_whitespace(U'\u3000'));
    CHECK(is_whitespace(U'\u0085'));
    CHECK_FALSE(is_whitespace(U'\u200B')); // zero-width space is not White_Space
    CHECK_FALSE(is_whitespace(U'\u001C')); // Python's isspace() says yes; White_Space says no
    CHECK(utf8_make_valid("\xE2\x82" "A\xC0\xAF", utf8_repair::per_maximal_subpart) == "\xEF\xBF\xBD" "A\xEF\xBF\xBD\xEF\xBF\xBD");
    CHECK(utf8_make_valid("\xE2\x82" "A", utf8_repair::per_byte) == "\xEF\xBF\xBD\xEF\xBF\xBD" "A");
    CHECK(utf8_make_valid("\xF0\x9F\x8E\x89", utf8_repair::per_byte) == "\xF0\x9F\x8E\x89");
    CHECK(utf8_decode("\xED\xA0\x80").code_point == utf8_invalid); // a surrogate
    CHECK(utf8_decode("\xF4\x8F\xBF\xBF").code_point == 0x10FFFF);
}

TEST_CASE("byte_bpe/smollm2 GGUF: the pre-tokenizers of llama.cpp's smollm, gpt2, llama-bpe match tokenizers") {
    const json fx = read_json_file(tokenizer_fixture("smollm2_gguf.json"));
    const auto gguf = smollm2_gguf();
    if (!gguf) return;
    gguf_tokenizer_metadata m = read_gguf_tokenizer(*gguf);
    CHECK(m.model == "gpt2");
    CHECK(m.pre == "smollm");
    CHECK(m.tokens.size() == fx["vocab_size"].get<size_t>());
    CHECK(m.merges.size() == fx["n_merges"].get<size_t>());
    for (const auto &[pre, variant] : fx["variants"].items()) {
        m.pre = pre;
        const auto tok = tokenizer_from_gguf(m);
        CHECK(tok->kind() == "byte-bpe");
        CHECK(tok->vocab_size() == 49152);
        CHECK(tok->bos_id() == 1);
        CHECK(tok->eos_id() == 2);
        CHECK_FALSE(tok->add_bos_default()); // tokenizer.ggml.add_bos_token = false
        check_variant(*tok, variant, "smollm2_gguf/" + pre);
    }
}

TEST_CASE("byte_bpe/smollm2 GGUF: all of wiki.test.raw as one text, id for id (sha256 of the ids)") {
    const json fx = read_json_file(tokenizer_fixture("smollm2_gguf.json"));
    const json &ref = fx["variants"]["smollm"]["wikitext"];
    const auto gguf = smollm2_gguf();
    const auto wiki = shared_file(ref["file"].get<std::string>());
    if (!gguf || !wiki) return;
    const auto tok = tokenizer_from_gguf(read_gguf_tokenizer(*gguf));
    const std::string text = read_text_file(*wiki);
    const auto ids = tok->encode(text, false);
    const auto first = ref["first_ids"].get<std::vector<int32_t>>();
    REQUIRE(ids.size() >= first.size());
    CHECK(std::vector<int32_t>(ids.begin(), ids.begin() + first.size()) == first);
    CHECK(ids.size() == ref["n_tokens"].get<size_t>());
    CHECK(ids_sha256(ids) == ref["ids_sha256"].get<std::string>());
    CHECK(tok->decode(ids) == text);
}

TEST_CASE("byte_bpe/tokenizer.json: a trained LLaMA-3-style tokenizer and variants of its pre-tokenizer") {
    const json fx = read_json_file(tokenizer_fixture("bpe_tiny_expected.json"));
    const auto tok = byte_bpe_tokenizer::load_json(tokenizer_fixture(fx["tokenizer"].get<std::string>()));
    CHECK(tok->vocab_size() == fx["vocab_size"].get<int32_t>());
    CHECK(tok->bos_id() == fx["bos_id"].get<int32_t>()); // from the TemplateProcessing post-processor
    CHECK(tok->eos_id() == fx["eos_id"].get<int32_t>()); // from tokenizer_config.json
    CHECK(tok->add_bos_default());
    CHECK(tok->vocab().ignore_merges);
    CHECK(tok->vocab().added.size() == 6); // 2 trainer specials, <|eot_id|>, <mask> (lstrip/rstrip), <|sép x|>, ñn (normalized)
    const std::string base_text = read_text_file(tokenizer_fixture(fx["tokenizer"].get<std::string>()));
    for (const auto &[name, variant] : fx["variants"].items()) {
        json spec = json::parse(base_text);
        const json &patch = variant["patch"];
        if (patch.contains("pre_tokenizer")) spec["pre_tokenizer"] = patch["pre_tokenizer"];
        if (patch.contains("ignore_merges")) spec["model"]["ignore_merges"] = patch["ignore_merges"];
        byte_bpe_vocab v;
        const status st = parse_tokenizer_json(spec.dump(), v);
        REQUIRE_MESSAGE(st.ok(), st.reason);
        const byte_bpe_tokenizer variant_tok(std::move(v));
        check_variant(variant_tok, variant, "bpe_tiny/" + name);
        for (const json &c : variant["with_bos"])
            CHECK(variant_tok.encode(c["text"].get<std::string>(), true) == c["ids"].get<std::vector<int32_t>>());
    }
    // <mask> has lstrip and rstrip: the spaces around it are part of the special token
    const auto p = tok->pretokenize("a  <mask>  b");
    CHECK(p == pieces{"a", "  <mask>  ", "b"});
}

TEST_CASE("byte_bpe/malformed UTF-8 input survives encoding; decoding repairs it like from_utf8_lossy") {
    const auto tok = byte_bpe_tokenizer::load_json(tokenizer_fixture("bpe_tiny/tokenizer.json"));
    for (const char *hex : {"61ff62", "e282", "e2828241", "c0af", "eda080", "f09f98", "80", "f4908080"}) {
        const std::string text = bytes_of_hex(hex);
        const auto ids = tok->encode(text, false);
        CHECK_MESSAGE(!ids.empty(), hex);
        CHECK_MESSAGE(tok->decode(ids) == utf8_make_valid(text, utf8_repair::per_maximal_subpart), hex);
    }
}

TEST_CASE("byte_bpe/errors name the key or the value") {
    std::vector<bpe_pretokenizer_step> steps;
    bool ignore = false;
    const status st = byte_bpe_pretokenizer_for("qwen2", steps, ignore);
    CHECK(st.code == status_code::unsupported_option);
    CHECK(st.reason.find("tokenizer.ggml.pre 'qwen2' is not implemented; implemented: gpt2,") == 0);
    REQUIRE(byte_bpe_pretokenizer_for("llama-bpe", steps, ignore).ok());
    CHECK(ignore);
    CHECK(steps.size() == 2);

    const json base = read_json_file(tokenizer_fixture("bpe_tiny/tokenizer.json"));
    byte_bpe_vocab v;
    json spec = base;
    spec["normalizer"] = {{"type", "NFC"}};
    CHECK(parse_tokenizer_json(spec.dump(), v).reason == "normalizer: type 'NFC' is not implemented (byte-level BPE tokenizers have none)");
    spec = base;
    spec["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "\\w+";
    CHECK(parse_tokenizer_json(spec.dump(), v).reason.find("pre_tokenizer.pretokenizers[0].pattern: Split pattern") == 0);
    spec = base;
    spec["model"]["merges"][3] = 17;
    CHECK(parse_tokenizer_json(spec.dump(), v).reason == "model.merges[3]: expected \"a b\" or [\"a\", \"b\"], got 17");
    CHECK(parse_tokenizer_json("{\"model\": ", v).reason.find("not valid JSON") == 0);
    spec = base;
    spec["model"]["merges"][0] = {"zz", "q"};
    CHECK(parse_tokenizer_json(spec.dump(), v).ok());
    CHECK_THROWS_WITH_AS(byte_bpe_tokenizer{v}, "byte-level BPE vocabulary: merge 0 ('zz q'): 'zz' is not a token", error);
}

} // TEST_SUITE
