// THE list of evaluations: adding one = one entry here + one file.
#include "eval/evaluation.h"

#include <cmath>

namespace qb {

json metric_row(const std::string &evaluation, const std::string &metric, double value, const std::string &unit) {
    return {{"evaluation", evaluation}, {"metric", metric}, {"value", value}, {"unit", unit}};
}

std::pair<double, double> mean_sd(const std::vector<double> &v) {
    double m = 0;
    for (double x : v) m += x;
    m /= double(v.size());
    double var = 0;
    for (double x : v) var += (x - m) * (x - m);
    return {m, v.size() > 1 ? std::sqrt(var / double(v.size() - 1)) : 0.0};
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
            {{"perplexity",
              "perplexity of a corpus under a named protocol (gptq | llamacpp | lm-eval), with KL divergence to the base model",
              {
                  {"dataset", option_type::choice, "wikitext2", "corpus kind: wikitext2 (raw file), c4 (json.gz shard), text, jsonl",
                   -INFINITY, INFINITY, {"wikitext2", "c4", "text", "jsonl"}},
                  {"path", option_type::string, "", "file relative to the data directory's datasets/ folder (default: wikitext2/wiki.test.raw, c4/c4-validation.00000-of-00008.json.gz)"},
                  {"field", option_type::string, "text", "jsonl / c4: the field holding each document's text"},
                  {"protocol", option_type::choice, "gptq", "gptq (papers), llamacpp (second half of each chunk), lm-eval (word perplexity)",
                   -INFINITY, INFINITY, {"gptq", "llamacpp", "lm-eval"}},
                  {"seq_len", option_type::integer, 0, "window length (0 = the protocol's: 2048, llamacpp 512)", 0, 1 << 20},
                  {"windows", option_type::integer, 256, "c4: windows sampled (the papers use 256, seed = the cell's seed)", 1, 1 << 20},
                  {"limit", option_type::integer, 0, "evaluate only the first N windows (0 = all); results are divided by what was evaluated", 0, 1 << 30},
                  {"batch", option_type::integer, 1, "windows per forward pass", 1, 4096},
                  {"against_base", option_type::boolean, true, "also report KL divergence, ln(ppl ratio) and top-1 agreement vs the unquantized model"},
                  {"kl_top_k", option_type::integer, 64, "base distribution cached as its top-k log-probs (0 = run the base on every window, exact KL)", 0, 1 << 20},
              }},
             make_perplexity_evaluation},
            {{"zeroshot",
              "0-shot multiple choice (PIQA, ARC-E/C, BoolQ, HellaSwag, WinoGrande) as lm-eval v0.4 scores it: acc, acc_norm",
              {
                  {"tasks", option_type::string_list, json::array({"piqa", "arc_easy", "arc_challenge", "boolq", "hellaswag", "winogrande"}),
                   "task names (datasets/tasks/<name>.yaml) or paths to task files"},
                  {"limit", option_type::integer, 0, "score only the first N items of each task (0 = all)", 0, 1 << 30},
                  {"add_bos", option_type::boolean, false, "prepend BOS to contexts (lm-eval v0.4 does not for LLaMA)"},
                  {"max_length", option_type::integer, 0, "context limit, left-truncated (0 = the model's)", 0, 1 << 22},
                  {"batch", option_type::integer, 16, "requests per forward pass, sorted by length and right-padded (1 = one item at a time, choices sharing the context's KV cache)", 1, 4096},
              }},
             make_zeroshot_evaluation},
            {{"latency",
              "wall time of a prompt prefill and of KV-cache decode steps (medians of repeats, after warm-up)",
              {
                  {"batch", option_type::integer, 1, "sequences per pass", 1, 4096},
                  {"seq_len", option_type::integer, 128, "prompt tokens per sequence", 1, 1 << 20},
                  {"new_tokens", option_type::integer, 0, "decode steps after the prompt (0 = prefill only)", 0, 1 << 20},
                  {"warmup", option_type::integer, 2, "untimed passes first", 0, 1000},
                  {"repeats", option_type::integer, 10, "timed passes", 1, 100000},
                  {"decode", option_type::choice, "auto",
                   "how decode steps launch: graph (one CUDA graph of the step, replayed per token), eager (operation by operation), "
                   "auto (graph on CUDA, eager on the CPU)",
                   -INFINITY, INFINITY, {"auto", "graph", "eager"}},
                  {"step_kernels", option_type::choice, "auto",
                   "kernels of the graph's decode steps: fused (attention as one decode_attn kernel per layer: RoPE, cache write, attention "
                   "over positions 0..pos; RMSNorm and SiLU x up as one kernel each), aten (ATen operations, attention masked over the whole "
                   "cache), auto (fused where the kernels run: CUDA, fp16; attention: head_dim 64 or 128, at most 8 query heads per KV "
                   "head); eager steps are always ATen",
                   -INFINITY, INFINITY, {"auto", "fused", "aten"}},
              }},
             make_latency_evaluation},
        });
    return r;
}

} // namespace qb
