// The common interface: loading by file type, GGUF metadata dispatch, id range checks.
#include "tokenizer/tokenizer.h"
#include "tokenizer_fixtures.h"

#include "core/error.h"

using namespace qb;
using namespace qb::test;

TEST_SUITE("tokenizer") {

TEST_CASE("tokenizer/load_tokenizer picks the implementation by file type") {
    const auto spm = load_tokenizer(tokenizer_fixture("spm_tiny_b.model"));
    CHECK(spm->kind() == "sentencepiece-bpe");
    CHECK(spm->vocab_size() == 700);
    const auto bpe = load_tokenizer(tokenizer_fixture("bpe_tiny/tokenizer.json"));
    CHECK(bpe->kind() == "byte-bpe");
    CHECK(bpe->encode("Hello world").front() == bpe->bos_id());
    CHECK(bpe->decode(bpe->encode("Hello world")) == "<|begin_of_text|>Hello world"); // special tokens are kept
    CHECK(bpe->decode(bpe->encode("Hello world", false)) == "Hello world");
    if (const auto tok512 = shared_file("models/stories260K/tok512.bin")) CHECK(load_tokenizer(*tok512)->kind() == "llama2c");
    CHECK_THROWS_WITH_AS(load_tokenizer("vocab.txt"),
                         "vocab.txt: unknown tokenizer file type '.txt' (.model: SentencePiece, .bin: llama2.c, .json: HF tokenizer.json)", error);
}

TEST_CASE("tokenizer/tokenizer_from_gguf refuses what it cannot run, naming the value") {
    gguf_tokenizer_metadata m;
    m.model = "bert";
    CHECK_THROWS_WITH_AS(tokenizer_from_gguf(m),
                         "GGUF tokenizer.ggml.model 'bert' is not implemented (llama: SentencePiece BPE, gpt2: byte-level BPE)", error);
    m.model = "gpt2";
    m.pre = "deepseek-coder";
    CHECK_THROWS_WITH_AS(tokenizer_from_gguf(m), doctest::Contains("tokenizer.ggml.pre 'deepseek-coder' is not implemented"), error);
    m.tokens = {"a"};
    CHECK_THROWS_WITH_AS(tokenizer_from_gguf(m), "GGUF tokenizer: 1 tokens but 0 token types (tokenizer.ggml.token_type)", error);
    m.model = "llama";
    m.token_types = {1};
    CHECK_THROWS_WITH_AS(tokenizer_from_gguf(m), "GGUF tokenizer 'llama': 1 tokens but 0 scores (tokenizer.ggml.scores)", error);
}

TEST_CASE("tokenizer/ids outside the vocabulary are refused by decode and token_text") {
    const auto tok = load_tokenizer(tokenizer_fixture("bpe_tiny/tokenizer.json"));
    const int32_t n = tok->vocab_size();
    CHECK_THROWS_WITH_AS(tok->decode(std::vector<int32_t>{5, n}), doctest::Contains(fmt::format("token id {} outside [0, {})", n, n).c_str()), error);
    CHECK_THROWS_WITH_AS(tok->token_text(-1), doctest::Contains("token id -1 outside"), error);
    CHECK(tok->token_text(tok->bos_id()) == "<|begin_of_text|>");
}

} // TEST_SUITE
