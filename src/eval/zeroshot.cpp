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
#include "eval/zeroshot.h"

#include "eval/evaluation.h"

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/run_record.h"
#include "data/data_files.h"
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
    size_t truncated = 0; // choices whose continuation exceeded max_length
};

// Rows of samples_<task>.jsonl from the newest earlier record of this config that did not
// finish (failed or interrupted), keyed by item index, kept only where all three hashes match.
std::map<int64_t, scored_item> resumable_samples(const eval_context &ctx, const zeroshot_task &task) {
    std::map<int64_t, scored_item> out;
    const auto exp_dir = ctx.record.dir().parent_path();
    auto dirs = list_run_dirs(exp_dir);
    for (auto it = dirs.rbegin(); it != dirs.rend(); ++it) {
        if (*it == ctx.record.dir() || it->filename().string().find(ctx.record.config_hash().substr(0, 8)) == std::string::npos) continue;
        // Only an unfinished run is resumed, and only when it is the newest record of this config:
        // after a completed one the cell runs in full (--force after a code or model change must
        // not bring back older numbers).
        std::string status;
        try {
            status = read_run(*it).manifest.value("status", "");
        } catch (const std::exception &) {
            status = "unreadable";
        }
        if (status == "ok" || status == "skipped") break;
        const fs::path samples = *it / ("samples_" + task.name + ".jsonl");
        if (!fs::exists(samples)) continue;
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
            s.truncated = r.value("truncated_choices", size_t(0));
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
    explicit zeroshot(const json &o) : limit_(o["limit"]), add_bos_(o["add_bos"]), max_len_(o["max_length"]), batch_(o["batch"]) {
        for (const auto &t : o["tasks"]) tasks_.push_back(t.get<std::string>());
    }

    status supports(const eval_context &ctx) const override {
        if (!ctx.tok) return status::failure(status_code::unsupported_option, "the model has no tokenizer (a synthetic model has no text)");
        return status::success();
    }

    void run(eval_context &ctx) const override {
        c10::InferenceMode guard;
        for (const auto &name : tasks_) {
            const zeroshot_task task = zeroshot_task_load(zeroshot_task_file(name), datasets_dir(ctx.data));
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
    void run_task(eval_context &ctx, const zeroshot_task &task) const {
        const auto &model = ctx.model;
        const auto &tok = *ctx.tok;
        const int64_t max_len = max_len_ > 0 ? max_len_ : model.config.max_seq_len;
        const size_t n_items = limit_ > 0 ? std::min<size_t>(task.items.size(), static_cast<size_t>(limit_)) : task.items.size();
        auto done = resumable_samples(ctx, task);

        std::ofstream samples(ctx.record.dir() / ("samples_" + task.name + ".jsonl"));
        progress bar(fmt::format("zeroshot[{}]", task.name), n_items, "item");
        std::vector<double> acc, acc_norm;
        loglikelihood_scorer scorer(model, max_len);
        size_t resumed = 0, truncated = 0;
        // Items are scored a block at a time (batched: all their requests sorted by length), then
        // written in order, so the samples file grows as the run goes and an interruption loses
        // at most one block.
        const size_t block = batch_ > 1 ? static_cast<size_t>(std::max<int64_t>(64, 4 * batch_)) : 1;
        for (size_t first = 0; first < n_items; first += block) {
            const size_t last = std::min(n_items, first + block);
            std::map<size_t, scored_item> scored;
            std::vector<const zeroshot_item *> todo;
            std::vector<size_t> todo_index;
            for (size_t ii = first; ii < last; ++ii)
                if (auto it = done.find(static_cast<int64_t>(ii)); it != done.end()) scored[ii] = it->second;
            // A batch's padding and composition move the last bits of a score: a block that is
            // not wholly resumed is scored whole, as an uninterrupted run scores it, so a resumed
            // run writes the same samples byte for byte.
            if (scored.size() < last - first)
                for (size_t ii = first; ii < last; ++ii)
                    if (batch_ > 1 || !scored.count(ii)) {
                        todo.push_back(&task.items[ii]);
                        todo_index.push_back(ii);
                    }
            resumed += scored.size();
            const std::string where = fmt::format("zeroshot[{}] items {}..{}", task.name, first, last - 1);
            std::vector<std::vector<choice_score>> results;
            if (batch_ > 1) {
                results = score_items_batched(model, max_len, batch_, tok, todo, add_bos_, where);
            } else {
                for (size_t t = 0; t < todo.size(); ++t)
                    results.push_back(scorer.score(tok, *todo[t], add_bos_, fmt::format("zeroshot[{}] item {}", task.name, todo_index[t])));
            }
            for (size_t t = 0; t < todo.size(); ++t) {
                if (scored.count(todo_index[t])) continue; // resumed: the recorded numbers stand
                scored_item &s = scored[todo_index[t]];
                for (const auto &c : results[t]) {
                    s.ll.push_back(c.loglikelihood);
                    s.greedy.push_back(c.is_greedy);
                    s.truncated += c.truncated ? 1 : 0;
                }
            }
            for (size_t ii = first; ii < last; ++ii) {
                const auto &item = task.items[ii];
                const scored_item &s = scored.at(ii);
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
                if (s.truncated) {
                    row["truncated_choices"] = s.truncated;
                    truncated += s.truncated;
                }
                samples << row.dump() << "\n";
                bar.advance();
            }
            samples.flush();
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
            r["resumed_items"] = resumed;
            r["batch"] = batch_;
            r["truncated_requests"] = truncated; // continuations longer than max_length, scored on their last max_length tokens
            ctx.record.add_metric(r);
        };
        for (const auto &m : task.metrics) emit(m, m == "acc" ? acc : acc_norm);
    }

    std::vector<std::string> tasks_;
    int64_t limit_;
    bool add_bos_;
    int64_t max_len_;
    int64_t batch_;
};

} // namespace

std::unique_ptr<evaluation> make_zeroshot_evaluation(const json &options) { return std::make_unique<zeroshot>(options); }

std::pair<std::vector<int32_t>, std::vector<int32_t>> lm_eval_encode_pair(const tokenizer &tok, std::string context,
                                                                          std::string continuation, bool add_bos) {
    // Python's str.isspace() for ASCII: space, \t \n \v \f \r and the separators \x1c-\x1f.
    auto space = [](char c) { return c == ' ' || (c >= '\t' && c <= '\r') || (c >= '\x1c' && c <= '\x1f'); };
    size_t n_spaces = 0;
    while (n_spaces < context.size() && space(context[context.size() - 1 - n_spaces])) ++n_spaces;
    if (n_spaces) {
        continuation = context.substr(context.size() - n_spaces) + continuation;
        context.resize(context.size() - n_spaces);
    }
    const bool bos = add_bos && tok.bos_id() >= 0;
    if (context.empty()) { // lm-eval: context "" -> [prefix_token_id] + encode(continuation)
        const int32_t prefix = tok.bos_id() >= 0 ? tok.bos_id() : tok.eos_id();
        return {{prefix}, tok.encode(continuation, false)};
    }
    auto whole = tok.encode(context + continuation, bos);
    auto ctx_ids = tok.encode(context, bos);
    std::vector<int32_t> cont(whole.begin() + static_cast<long>(std::min(ctx_ids.size(), whole.size())), whole.end());
    return {std::move(ctx_ids), std::move(cont)};
}

namespace {

// One request as lm-eval feeds it: (context + continuation)[-(max_length + 1):], the last
// `cont` tokens scored. A continuation longer than max_length keeps its last max_length tokens
// (choice_score::truncated).
struct lm_eval_window {
    std::vector<int32_t> all;
    size_t cont = 0;
    bool truncated = false;
};

lm_eval_window window_of(const tokenizer &tok, const zeroshot_request &req, bool add_bos, int64_t max_length,
                         const std::string &where) {
    auto [ctx_ids, cont] = lm_eval_encode_pair(tok, req.context, req.continuation, add_bos);
    if (cont.empty()) fail("{}: the continuation \"{}\" has no tokens", where, req.continuation);
    lm_eval_window w{std::move(ctx_ids), cont.size(), false};
    w.all.insert(w.all.end(), cont.begin(), cont.end());
    if (static_cast<int64_t>(w.all.size()) > max_length + 1) {
        w.cont = std::min<size_t>(cont.size(), static_cast<size_t>(max_length));
        w.truncated = w.cont < cont.size();
        w.all.erase(w.all.begin(), w.all.end() - (max_length + 1));
    }
    return w;
}

} // namespace

// Most items need a few hundred positions: the cache starts small and grows when an item needs more.
loglikelihood_scorer::loglikelihood_scorer(const llama_model &model, int64_t max_length)
    : model_(model), max_len_(max_length), cache_(model.make_cache(1, std::min<int64_t>(max_length, 1024))) {}

std::vector<choice_score> loglikelihood_scorer::score(const tokenizer &tok, const zeroshot_item &item, bool add_bos,
                                                      const std::string &where) {
    c10::InferenceMode guard;
    const auto device = model_.device();
    std::vector<choice_score> out;
    for (const auto &req : item.requests) {
        const lm_eval_window w = window_of(tok, req, add_bos, max_len_, where);
        const auto &all = w.all;
        const bool truncated = w.truncated;
        const std::vector<int32_t> ctx_ids(all.begin(), all.end() - static_cast<long>(w.cont));
        const std::vector<int32_t> cont(all.end() - static_cast<long>(w.cont), all.end());
        const int64_t fed = static_cast<int64_t>(all.size()) - 1;
        if (fed > cache_.capacity()) {
            int64_t cap = cache_.capacity();
            while (cap < fed) cap *= 2;
            cache_ = model_.make_cache(1, std::min<int64_t>(cap, max_len_));
            cached_ctx_.clear();
        }
        if (ctx_ids != cached_ctx_) {
            cache_.length = 0;
            auto input = at::tensor(std::vector<int64_t>(ctx_ids.begin(), ctx_ids.end()), at::TensorOptions().dtype(at::kLong))
                             .view({1, -1})
                             .to(device);
            auto logits = model_.forward(input, &cache_);
            ctx_last_logp_ = at::log_softmax(logits[0][logits.size(1) - 1], -1);
            cached_ctx_ = ctx_ids;
        }
        cache_.length = static_cast<int64_t>(ctx_ids.size()); // rewind to the end of the context
        // The first continuation token is predicted by the context's last position; the others
        // by the continuation tokens before them, fed after the context.
        at::Tensor lp = ctx_last_logp_.unsqueeze(0); // [1, V]
        if (cont.size() > 1) {
            std::vector<int64_t> cont_in(cont.begin(), cont.end() - 1);
            auto in = at::tensor(cont_in, at::TensorOptions().dtype(at::kLong)).view({1, -1}).to(device);
            lp = at::cat({lp, at::log_softmax(model_.forward(in, &cache_)[0], -1)}, 0); // [len(cont), V]
        }
        auto targets = at::tensor(std::vector<int64_t>(cont.begin(), cont.end()), at::TensorOptions().dtype(at::kLong)).to(device);
        choice_score c;
        c.loglikelihood = lp.gather(1, targets.unsqueeze(1)).to(at::kDouble).sum().item<double>();
        c.is_greedy = at::equal(lp.argmax(-1), targets);
        c.truncated = truncated;
        out.push_back(c);
    }
    return out;
}

std::vector<std::vector<choice_score>> score_items_batched(const llama_model &model, int64_t max_length, int64_t batch,
                                                           const tokenizer &tok, const std::vector<const zeroshot_item *> &items,
                                                           bool add_bos, const std::string &where) {
    c10::InferenceMode guard;
    struct request {
        size_t item, choice;
        lm_eval_window w;
    };
    std::vector<request> reqs;
    std::vector<std::vector<choice_score>> out(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
        out[i].resize(items[i]->requests.size());
        for (size_t c = 0; c < items[i]->requests.size(); ++c) {
            reqs.push_back({i, c, window_of(tok, items[i]->requests[c], add_bos, max_length, where)});
        }
    }
    // Longest first: the padding of each batch is bounded by its first (longest) request.
    std::stable_sort(reqs.begin(), reqs.end(), [](const request &a, const request &b) { return a.w.all.size() > b.w.all.size(); });
    const auto device = model.device();
    for (size_t b0 = 0; b0 < reqs.size(); b0 += static_cast<size_t>(batch)) {
        const size_t b1 = std::min(reqs.size(), b0 + static_cast<size_t>(batch));
        const int64_t t = static_cast<int64_t>(reqs[b0].w.all.size()) - 1; // inputs drop the last token
        std::vector<int64_t> ids(static_cast<size_t>(int64_t(b1 - b0) * t), 0);
        for (size_t r = b0; r < b1; ++r)
            std::copy(reqs[r].w.all.begin(), reqs[r].w.all.end() - 1, ids.begin() + static_cast<long>(int64_t(r - b0) * t));
        auto input = at::tensor(ids, at::TensorOptions().dtype(at::kLong)).view({int64_t(b1 - b0), t}).to(device);
        auto logits = model.forward(input); // [B, T, V] fp32
        for (size_t r = b0; r < b1; ++r) {
            const auto &rq = reqs[r];
            const auto &all = rq.w.all;
            const int64_t len = static_cast<int64_t>(all.size()) - 1, n = static_cast<int64_t>(rq.w.cont);
            auto lp = at::log_softmax(logits[int64_t(r - b0)].narrow(0, len - n, n), -1); // [cont, V]
            auto targets = at::tensor(std::vector<int64_t>(all.end() - n, all.end()), at::TensorOptions().dtype(at::kLong)).to(device);
            choice_score c;
            c.loglikelihood = lp.gather(1, targets.unsqueeze(1)).to(at::kDouble).sum().item<double>();
            c.is_greedy = at::equal(lp.argmax(-1), targets);
            c.truncated = rq.w.truncated;
            out[rq.item][rq.choice] = c;
        }
    }
    return out;
}

} // namespace qb
