// Tokenizer throughput (Google Benchmark): encode all of wiki.test.raw as one text (the
// perplexity protocol's input) and decode the ids back, with each tokenizer found on this machine.
//   ninja -C build tests/tokenizer/bench_tokenizer && ./build/tests/tokenizer/bench_tokenizer
// Counters: tokens (per text), tokens/s and MB/s of UTF-8 text (rates over all iterations).
#include "tokenizer/byte_bpe.h"
#include "tokenizer/llama2c.h"
#include "tokenizer/sentencepiece.h"
#include "tokenizer_test_data.h"

#include <benchmark/benchmark.h>

#include <cstdio>

namespace {

using namespace qb;

void set_rates(benchmark::State &state, size_t tokens, size_t bytes) {
    state.counters["tokens"] = double(tokens);
    state.counters["tokens/s"] = benchmark::Counter(double(tokens) * double(state.iterations()), benchmark::Counter::kIsRate);
    state.counters["MB/s"] = benchmark::Counter(double(bytes) * double(state.iterations()) / 1e6, benchmark::Counter::kIsRate);
}

void bench_encode(benchmark::State &state, const tokenizer *tok, const std::string *text) {
    size_t n = 0;
    for (auto _ : state) {
        const auto ids = tok->encode(*text, false);
        n = ids.size();
        benchmark::DoNotOptimize(ids.data());
    }
    set_rates(state, n, text->size());
}

void bench_decode(benchmark::State &state, const tokenizer *tok, const std::string *text) {
    const auto ids = tok->encode(*text, false);
    for (auto _ : state) {
        const std::string out = tok->decode(ids);
        benchmark::DoNotOptimize(out.data());
    }
    set_rates(state, ids.size(), text->size());
}

} // namespace

int main(int argc, char **argv) {
    benchmark::Initialize(&argc, argv);
    const auto wiki = test::data_dir_file("datasets/wikitext2/wiki.test.raw");
    if (!wiki) {
        std::fprintf(stderr, "wikitext2/wiki.test.raw not found in the data directory %s\n", test::data_dir().path.c_str());
        return 1;
    }
    static const std::string text = test::read_text_file(*wiki);
    static std::vector<std::pair<std::string, std::unique_ptr<tokenizer>>> tokenizers;
    if (const auto f = test::data_dir_file("models/llama2-tokenizer/tokenizer.model"))
        tokenizers.emplace_back("llama2_spm", sentencepiece_tokenizer::load(*f));
    if (const auto f = test::smollm2_gguf_file()) tokenizers.emplace_back("smollm2_gguf", tokenizer_from_gguf(test::read_gguf_tokenizer(*f)));
    if (const auto f = test::data_dir_file("models/stories260K/tok512.bin"))
        tokenizers.emplace_back("stories260k_llama2c", llama2c_tokenizer::load(*f));
    for (const auto &[name, tok] : tokenizers) {
        benchmark::RegisterBenchmark(("encode/wikitext2_test/" + name).c_str(), bench_encode, tok.get(), &text)->Unit(benchmark::kMillisecond);
        benchmark::RegisterBenchmark(("decode/wikitext2_test/" + name).c_str(), bench_decode, tok.get(), &text)->Unit(benchmark::kMillisecond);
    }
    benchmark::AddCustomContext("text", wiki->string() + " (" + std::to_string(text.size()) + " bytes)");
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}
