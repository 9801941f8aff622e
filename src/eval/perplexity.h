// The parts of the perplexity evaluation that tests check against an independent reference
// (tests/eval/, fixtures from scripts/make_eval_fixtures.py): the token windows of each protocol
// and the per-token NLL of scored windows. The evaluation itself is perplexity.cpp.
#pragma once
#include "model/llama.h"
#include "tokenizer/tokenizer.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace qb {

// A scored window: the tokens fed to the model and which of its next-token predictions count.
struct perplexity_window {
    std::vector<int32_t> tokens; // tokens[0, n-1) are fed to the model; tokens[1, n) are targets
    int64_t first_scored = 1;    // first index of `tokens` whose prediction (from position - 1) counts
    int64_t document = 0;        // lm-eval: the article the window belongs to (limit counts articles)
};

struct perplexity_text_windows {
    std::vector<perplexity_window> windows;
    std::vector<int64_t> document_words; // lm-eval: words of each article (lm-eval's count)
};

// The windows of `protocol` (gptq | llamacpp | lm-eval) over a text file's contents.
// `wikitext` says that `raw` is a wiki.*.raw file: gptq then joins its Hugging Face rows with
// "\n\n", lm-eval splits it into articles.
perplexity_text_windows perplexity_windows_of_text(const tokenizer &tok, const std::string &protocol, bool wikitext,
                                                   std::string_view raw, int64_t seq_len);

// sha256 over each window's int32 ids and first_scored: the `tokens_hash` of the result rows.
std::string perplexity_tokens_hash(const std::vector<perplexity_window> &windows);

// Per window, the NLL (fp64 of the fp32 log-softmax) of each scored token, with windows of equal
// length batched `batch` at a time: exactly what the evaluation computes.
std::vector<std::vector<double>> perplexity_token_nll(const llama_model &model, const std::vector<perplexity_window> &windows,
                                                      int64_t batch);

// lm-eval's word count: len(re.split(r"\s+", text)) (leading/trailing whitespace counts an
// empty word, as Python's re.split does).
int64_t lm_eval_word_count(std::string_view text);

} // namespace qb
