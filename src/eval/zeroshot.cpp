// Zero-shot multiple choice, scored as lm-evaluation-harness v0.4 does: each choice's summed
// log-likelihood of its continuation given the context (tokens of context + continuation encoded
// the lm-eval way: whole string minus the context's tokens, trailing context spaces moved to the
// continuation, no BOS unless asked), acc = argmax of the sums, acc_norm = argmax of sum divided
// by the choice's length in characters; stderr = sample stdev / sqrt(n).
//
// Choices that share a context share its computation: the context is run once into a KV cache
// and each continuation continues from it (the cache is rewound between choices). Per-item
// results go to samples_<task>.jsonl with doc/prompt/target hashes, so two runs can prove they
// scored the same items; an interrupted cell resumes from the samples of its previous record.
#include "eval/evaluation.h"

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/run_record.h"
#include "data/zeroshot_tasks.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <map>

namespace qb {

namespace fs = std::filesystem;

namespace {

struct scored_item {
    std::vector<double> ll;
    std::vector<bool> greedy;
};

// Rows of samples_<task>.jsonl from the newest earlier record of this config (failed or
// interrupted), keyed by item index, kept only where all three hashes still match.
std::map<int64_t, scored_item> resumable_samples(const eval_context &ctx, const zeroshot_task &task) {
    std::map<int64_t, scored_item> out;
    const auto exp_dir = ctx.record.dir().parent_path();
    auto dirs = list_run_dirs(exp_dir);
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
        if (*it == ctx.record.dir()) continue;
        const fs::path samples = *it / ("samples_" + task.name + ".jsonl");
        if (!fs::exists(samples) || it->filename().string().find(ctx.record.config_hash().substr(0, 8)) == std::string::npos) continue;
        std::ifstream in(samples);
        std::string line;
        while (std::getline(in, line)) {
            json r;
            try {
                r = json::parse(line);
            } catch (...) {
                break; // a line cut by the interruption ends what can be trusted
            }
            const int64_t i = r.value("doc_index", int64_t(-1));
            if (i < 0 || i >= static_cast<int64_t>(task.items.size())) continue;
            const auto &item = task.items[static_cast<size_t>(i)];
            if (r.value("doc_hash", "") != item.doc_hash || r.value("prompt_hash", "") != item.prompt_hash ||
                r.value("target_hash", "") != item.target_hash)
                continue;
            scored_item s;
            for (const auto &x : r["loglikelihoods"]) s.ll.push_back(x.get<double>());
            for (const auto &x : r["is_greedy"]) s.greedy.push_back(x.get<bool>());
            if (s.ll.size() == item.requests.size()) out[i] = std::move(s);
        }
        if (!out.empty()) {
            log_info("zeroshot[{}]: resuming {} scored items from {}", task.name, out.size(), samples.string());
            break;
        }
    }
    return out;
}

class zeroshot final : public evaluation {
public:
    explicit zeroshot(const json &o) : limit_(o["limit"]), add_bos_(o["add_bos"]), max_len_(o["max_length"]) {
        for (const auto &t : o["tasks"]) tasks_.push_back(t.get<std::string>());
    }

    status supports(const eval_context &ctx) const override {
        if (!ctx.tok) return status::failure(status_code::unsupported_option, "the model has no tokenizer (a synthetic model has no text)");
        return status::success();
    }

    void run(eval_context &ctx) const override {
        c10::InferenceMode guard;
        for (const auto &name : tasks_) {
            const zeroshot_task task = zeroshot_task_load(zeroshot_task_file(name), ctx.data);
            json files = json::array();
            for (const auto &f : task.files) files.push_back(f.to_json());
            ctx.record.add_dataset(task.name, {{"files", files},
                                               {"definition", task.definition_file.string()},
                                               {"definition_sha256", task.definition_sha256},
                                               {"version", task.version},
                                               {"template", task.template_name},
                                               {"task_hash", task.task_hash},
                                               {"items", task.items.size()}});
            run_task(ctx, task);
        }
    }

private:
    // lm-eval's _encode_pair: trailing spaces of the context go to the continuation; the
    // continuation's tokens are those of context+continuation after the context's tokens.
    std::pair<std::vector<int32_t>, std::vector<int32_t>> encode_pair(const tokenizer &tok, std::string context,
                                                                      std::string continuation) const {
        size_t n_spaces = 0;
        while (n_spaces < context.size() && context[context.size() - 1 - n_spaces] == ' ') ++n_spaces;
        if (n_spaces) {
            continuation = context.substr(context.size() - n_spaces) + continuation;
            context.resize(context.size() - n_spaces);
        }
        const bool bos = add_bos_ && tok.bos_id() >= 0;
        auto whole = tok.encode(context + continuation, bos);
        auto ctx_ids = tok.encode(context, bos);
        if (ctx_ids.empty()) ctx_ids.push_back(tok.eos_id() >= 0 ? tok.eos_id() : tok.bos_id()); // lm-eval: empty context -> EOT
        std::vector<int32_t> cont(whole.begin() + static_cast<long>(std::min(ctx_ids.size(), whole.size())), whole.end());
        return {ctx_ids, cont};
    }

    void run_task(eval_context &ctx, const zeroshot_task &task) const {
        const auto &model = ctx.model;
        const auto &tok = *ctx.tok;
        const int64_t max_len = max_len_ > 0 ? max_len_ : model.config.max_seq_len;
        const size_t n_items = limit_ > 0 ? std::min<size_t>(task.items.size(), static_cast<size_t>(limit_)) : task.items.size();
        auto done = resumable_samples(ctx, task);

        std::ofstream samples(ctx.record.dir() / ("samples_" + task.name + ".jsonl"));
        progress bar(fmt::format("zeroshot[{}]", task.name), n_items, "item");
        std::vector<double> acc, acc_norm;
        const auto device = model.device();
        // Most items need a few hundred positions: start small, grow when an item needs more.
        auto cache = model.make_cache(1, std::min<int64_t>(max_len, 1024));
        for (size_t ii = 0; ii < n_items; ++ii) {
            const auto &item = task.items[ii];
            scored_item s;
            if (auto it = done.find(static_cast<int64_t>(ii)); it != done.end()) {
                s = it->second;
            } else {
                // Choices of one item share their context (except partial scoring): run it once.
                std::vector<int32_t> shared_ctx;
                at::Tensor ctx_last_logp; // log-probs after the context's last token
                for (const auto &req : item.requests) {
                    auto [ctx_ids, cont] = encode_pair(tok, req.context, req.continuation);
                    if (cont.empty()) fail("zeroshot[{}] item {}: the continuation \"{}\" has no tokens", task.name, ii, req.continuation);
                    // lm-eval truncates from the left to max_length + 1 tokens.
                    std::vector<int32_t> all = ctx_ids;
                    all.insert(all.end(), cont.begin(), cont.end());
                    if (static_cast<int64_t>(all.size()) > max_len + 1) {
                        all.erase(all.begin(), all.end() - (max_len + 1));
                        ctx_ids.assign(all.begin(), all.end() - static_cast<long>(cont.size()));
                    }
                    const int64_t fed = static_cast<int64_t>(all.size()) - 1; // the last token is only a target
                    if (fed > cache.capacity()) {
                        int64_t cap = cache.capacity();
                        while (cap < fed) cap *= 2;
                        cache = model.make_cache(1, std::min<int64_t>(cap, max_len));
                        shared_ctx.clear();
                    }
                    if (ctx_ids != shared_ctx) {
                        cache.length = 0;
                        auto input = at::tensor(std::vector<int64_t>(ctx_ids.begin(), ctx_ids.end()), at::TensorOptions().dtype(at::kLong))
                                         .view({1, -1})
                                         .to(device);
                        auto logits = model.forward(input, &cache);
                        ctx_last_logp = at::log_softmax(logits[0][logits.size(1) - 1], -1);
                        shared_ctx = ctx_ids;
                    }
                    cache.length = static_cast<int64_t>(ctx_ids.size()); // rewind to the end of the context
                    // Continuation tokens but the last go in; the first is predicted by the context.
                    std::vector<int64_t> cont_in(cont.begin(), cont.end() - 1);
                    at::Tensor lp = ctx_last_logp.unsqueeze(0); // [1, V]
                    if (!cont_in.empty()) {
                        auto in = at::tensor(cont_in, at::TensorOptions().dtype(at::kLong)).view({1, -1}).to(device);
                        lp = at::cat({lp, at::log_softmax(model.forward(in, &cache)[0], -1)}, 0); // [len(cont), V]
                    }
                    auto targets = at::tensor(std::vector<int64_t>(cont.begin(), cont.end()), at::TensorOptions().dtype(at::kLong)).to(device);
                    const double ll = lp.gather(1, targets.unsqueeze(1)).sum().item<double>();
                    const bool greedy = at::equal(lp.argmax(-1), targets);
                    s.ll.push_back(ll);
                    s.greedy.push_back(greedy);
                }
            }
            size_t pred = 0, pred_norm = 0;
            for (size_t c = 1; c < s.ll.size(); ++c) {
                if (s.ll[c] > s.ll[pred]) pred = c;
                if (s.ll[c] / double(utf8_length(item.choices[c])) > s.ll[pred_norm] / double(utf8_length(item.choices[pred_norm])))
                    pred_norm = c;
            }
            acc.push_back(pred == static_cast<size_t>(item.gold) ? 1.0 : 0.0);
            acc_norm.push_back(pred_norm == static_cast<size_t>(item.gold) ? 1.0 : 0.0);
            json row = {{"doc_index", item.index},   {"doc_id", item.doc_id},         {"doc_hash", item.doc_hash},
                        {"prompt_hash", item.prompt_hash}, {"target_hash", item.target_hash}, {"gold", item.gold},
                        {"loglikelihoods", s.ll},     {"is_greedy", s.greedy},        {"pred", pred},
                        {"pred_norm", pred_norm},     {"acc", acc.back()},            {"acc_norm", acc_norm.back()}};
            samples << row.dump() << "\n";
            samples.flush();
            bar.advance();
        }
        bar.finish();

        auto emit = [&](const std::string &metric, const std::vector<double> &v) {
            auto [m, sd] = mean_sd(v);
            json r = metric_row("zeroshot", task.name + "." + metric, m, "fraction");
            r["stderr"] = sd / std::sqrt(double(v.size()));
            r["items"] = v.size();
            r["items_available"] = task.items.size();
            r["task_version"] = task.version;
            r["template"] = task.template_name;
            r["task_hash"] = task.task_hash;
            r["add_bos"] = add_bos_;
            r["resumed_items"] = done.size();
            ctx.record.add_metric(r);
        };
        for (const auto &m : task.metrics) emit(m, m == "acc" ? acc : acc_norm);
    }

    std::vector<std::string> tasks_;
    int64_t limit_;
    bool add_bos_;
    int64_t max_len_;
};

} // namespace

std::unique_ptr<evaluation> make_zeroshot_evaluation(const json &options) { return std::make_unique<zeroshot>(options); }

} // namespace qb
