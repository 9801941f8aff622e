// The parts of the zero-shot evaluation that tests check against an independent reference
// (tests/eval/, fixtures from scripts/make_eval_fixtures.py): lm-eval v0.4's split of a request
// into context and continuation tokens, and the log-likelihood of each choice of an item. The
// evaluation itself (metrics, samples file, resume) is zeroshot.cpp.
#pragma once
#include "data/zeroshot_tasks.h"
#include "model/llama.h"
#include "tokenizer/tokenizer.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace qb {

// lm-eval v0.4 _encode_pair: trailing whitespace of the context (Python's str.rstrip(), ASCII
// whitespace here) moves to the front of the continuation; the continuation's tokens are those of
// encode(context + continuation) after the first len(encode(context)) tokens. No BOS unless
// add_bos. An empty context becomes the prefix token (BOS, else EOS) as lm-eval's loglikelihood
// does for context "".
std::pair<std::vector<int32_t>, std::vector<int32_t>> lm_eval_encode_pair(const tokenizer &tok, std::string context,
                                                                          std::string continuation, bool add_bos);

struct choice_score {
    double loglikelihood = 0; // sum of the continuation tokens' log-probs (fp32 log-softmax, fp64 sum)
    bool is_greedy = false;   // every continuation token is the argmax of its position
    // The continuation alone was longer than max_length: only its last max_length tokens were
    // scored (lm-eval would mis-slice such a request; we say so and count it instead).
    bool truncated = false;
};

// Scores the choices of items as lm-eval's _loglikelihood_tokens does: input
// (context + continuation)[-(max_length + 1):][:-1], the continuation's log-probs from the last
// len(continuation) positions. Choices sharing a context run it once into a KV cache (rewound
// between choices), which gives the same numbers as one pass over the whole input.
class loglikelihood_scorer {
public:
    loglikelihood_scorer(const llama_model &model, int64_t max_length);
    std::vector<choice_score> score(const tokenizer &tok, const zeroshot_item &item, bool add_bos, const std::string &where);

private:
    const llama_model &model_;
    int64_t max_len_;
    kv_cache cache_;
    std::vector<int32_t> cached_ctx_; // the context whose keys/values the cache holds
    at::Tensor ctx_last_logp_;        // log-probs after that context's last token
};

// The same numbers without the KV cache, for throughput: all requests of a block of items are
// sorted by length and run `batch` at a time, right-padded (causal attention keeps padding out of
// every scored position), as lm-eval batches them. On a GPU this turns thousands of tiny forward
// passes into a few large ones; tests check it against loglikelihood_scorer.
std::vector<std::vector<choice_score>> score_items_batched(const llama_model &model, int64_t max_length, int64_t batch,
                                                           const tokenizer &tok, const std::vector<const zeroshot_item *> &items,
                                                           bool add_bos, const std::string &where);

} // namespace qb
