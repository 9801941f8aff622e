// THE list of evaluations: adding one = one entry here + one file.
#include "eval/evaluation.h"

namespace qb {

json metric_row(const std::string &evaluation, const std::string &metric, double value, const std::string &unit) {
    return {{"evaluation", evaluation}, {"metric", metric}, {"value", value}, {"unit", unit}};
}

const registry<evaluation_entry> &evaluations() {
    static const registry<evaluation_entry> r(
        component_kind::evaluation,
        {
            {{"kl_divergence",
              "KL divergence and top-1 agreement of the model vs its unquantized base on seeded random token ids",
              {
                  {"sequences", option_type::integer, 4, "number of random sequences", 1, 1e6},
                  {"seq_len", option_type::integer, 128, "tokens per sequence", 2, 1 << 20},
              }},
             make_kl_divergence_evaluation},
            {{"latency",
              "wall time of a prompt prefill and of KV-cache decode steps (medians of repeats, after warm-up)",
              {
                  {"batch", option_type::integer, 1, "sequences per pass", 1, 4096},
                  {"seq_len", option_type::integer, 128, "prompt tokens per sequence", 1, 1 << 20},
                  {"new_tokens", option_type::integer, 0, "decode steps after the prompt (0 = prefill only)", 0, 1 << 20},
                  {"warmup", option_type::integer, 2, "untimed passes first", 0, 1000},
                  {"repeats", option_type::integer, 10, "timed passes", 1, 100000},
              }},
             make_latency_evaluation},
        });
    return r;
}

} // namespace qb
