// The evaluations against an independent reference: tests/fixtures/eval/stories260k_eval.json,
// written by scripts/make_eval_fixtures.py with Hugging Face transformers (fp32, eager), a
// Python llama2.c tokenizer and the protocols implemented from their descriptions and lm-eval
// v0.4's code paths. The model is stories260K (llama2.c) from the data directory; without it
// every case is skipped with a message.
//
// Tolerances: per-window mean NLL and per-choice log-likelihoods within 1e-4 absolute. Both
// sides compute fp32 logits of the same weights with different kernels (LibTorch here, PyTorch
// eager in transformers there), so log-probs agree to ~1e-6 per token; a few hundred tokens
// summed stay far below 1e-4, while any protocol difference (one token shifted, a BOS more or
// less, another split of context and continuation) moves these numbers by 1e-2 or more.
// ATen first: c10 defines a CHECK macro that doctest's must replace, not the other way round.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include "config.h"
#include "core/experiment.h"
#include "core/json.h"
#include "core/log.h"
#include "core/paths.h"
#include "core/run_record.h"
#include "core/sha256.h"
#include "data/corpus.h"
#include "data/data_files.h"
#include "data/zeroshot_tasks.h"
#include "eval/evaluation.h"
#include "eval/perplexity.h"
#include "eval/zeroshot.h"
#include "harness/catalog.h"
#include "model/formats.h"
#include "test_util.h"
#include "tokenizer/tokenizer_fixtures.h"

#include <doctest/doctest.h>

#include <cmath>
#include <fstream>
#include <optional>

using namespace qb;
namespace fs = std::filesystem;

namespace {

constexpr double nll_tol = 1e-4; // see the file comment

const json &fixture() {
    static const json fx = test::read_json_file(fs::path(QBENCH_SOURCE_DIR) / "tests" / "fixtures" / "eval" / "stories260k_eval.json");
    return fx;
}

// stories260K through the registered llama2c format, loaded once; null after a "skipped" message.
const loaded_model *stories() {
    static std::optional<loaded_model> model;
    static bool tried = false;
    if (!tried) {
        tried = true;
        const auto bin = test::data_dir_file(fixture()["model"].get<std::string>());
        const auto tok = test::data_dir_file(fixture()["tokenizer"].get<std::string>());
        if (bin && tok) {
            // One intra-op thread: stories260K's ops are tiny, and OpenMP workers spin-waiting
            // between them cost more than they compute (10x slower on a loaded 2-core machine).
            at::set_num_threads(1);
            log_set_quiet(true);
            const json options = {{"name", ""}, {"path", bin->string()}, {"tokenizer", tok->string()}, {"max_seq_len", 0}};
            model = model_formats().get("llama2c").load(options, model_load_context{config_dir(), test::data_dir().path, at::kCPU, at::kFloat});
            log_set_quiet(false);
            REQUIRE(sha256_file_hex(*bin) == fixture()["model_sha256"].get<std::string>());
        }
    }
    if (!model) MESSAGE("skipped: stories260K not found in the data directory " << test::data_dir().path);
    return model ? &*model : nullptr;
}

std::string wiki_raw() {
    const auto path = test::data_dir() .path / fixture()["dataset"].get<std::string>();
    REQUIRE(sha256_file_hex(path) == fixture()["dataset_sha256"].get<std::string>());
    return test::read_text_file(path);
}

double mean_of(const std::vector<double> &v) {
    double s = 0;
    for (double x : v) s += x;
    return s / double(v.size());
}

// One cell of an experiment file written here (its evaluation options resolved by the catalog,
// as the runner resolves them), and what running an evaluation of it needs.
struct eval_harness {
    test::scratch_dir dir;
    experiment exp;
    data_dir_choice data = test::data_dir();

    explicit eval_harness(const std::string &evaluations_yaml) {
        const auto file = dir.write("eval.yaml", "name: evaltest\nmodel: {format: llama2c, path: " + fixture()["model"].get<std::string>() +
                                                     ", tokenizer: " + fixture()["tokenizer"].get<std::string>() +
                                                     "}\nevaluations:\n" + evaluations_yaml);
        exp = experiment_load(file, registered_catalog());
    }
    const experiment_cell &cell(size_t i = 0) const { return exp.cells.at(i); }

    // Runs evaluation `e` of cell `i` into a new record; returns the record's folder and metrics.
    recorded_run run(const llama_model &base, const llama_model &model, size_t i = 0, size_t e = 0, bool finish = true) {
        const auto &c = cell(i);
        const loaded_model &m = *stories();
        fs::path rdir;
        {
            run_record record(dir.path() / "results", exp, c, {"test"});
            eval_context ctx{base, model, m.tok.get(), m.identity, c, c.evaluations.at(e).options, record, data, dir.path() / "cache"};
            const auto ev = evaluations().get(c.evaluations.at(e).name).create(c.evaluations.at(e).options);
            REQUIRE(ev->supports(ctx).ok());
            ev->run(ctx);
            if (finish) record.finish_ok();
            rdir = record.dir();
        } // an unfinished record closes as failed ("interrupted")
        return read_run(rdir);
    }
};

const json &metric(const recorded_run &r, const std::string &name) {
    for (const auto &m : r.metrics)
        if (m["metric"] == name) return m;
    FAIL("metric " << name << " missing");
    static json none;
    return none;
}

std::vector<json> read_jsonl(const fs::path &p) {
    std::vector<json> out;
    std::ifstream in(p);
    std::string line;
    while (std::getline(in, line))
        if (!line.empty()) out.push_back(json::parse(line));
    return out;
}

} // namespace

TEST_SUITE("eval") {

TEST_CASE("eval/gptq: WikiText-2 token stream, windows and per-window NLL match the reference") {
    const auto *m = stories();
    if (!m) return;
    const json &g = fixture()["gptq"];
    const std::string raw = wiki_raw();
    // The text the papers tokenize: the HF rows joined with "\n\n".
    const std::string text = join_rows(wikitext_hf_rows(raw));
    CHECK(text.size() == g["text_bytes"].get<size_t>());
    CHECK(sha256_hex(text) == g["text_sha256"].get<std::string>());
    const auto ids = m->tok->encode(text, true);
    CHECK(ids.size() == g["n_tokens"].get<size_t>());
    CHECK(test::ids_sha256(ids) == g["tokens_sha256"].get<std::string>());

    const int64_t seq_len = g["seq_len"];
    const auto windows = perplexity_windows_of_text(*m->tok, "gptq", true, raw, seq_len).windows;
    REQUIRE(windows.size() == g["n_windows"].get<size_t>());
    std::vector<perplexity_window> first;
    for (const auto &w : g["windows"]) {
        const size_t i = w["index"];
        CHECK_MESSAGE(windows[i].tokens == w["tokens"].get<std::vector<int32_t>>(), "window " << i);
        CHECK(windows[i].first_scored == 1);
        first.push_back(windows[i]);
    }
    const auto &last = g["last_window"];
    CHECK(test::ids_sha256(windows.back().tokens) == last["tokens_sha256"].get<std::string>());

    // Batched two at a time, as the evaluation does with batch: 2.
    first.push_back(windows.back());
    const auto nll = perplexity_token_nll(m->model, first, 2);
    REQUIRE(nll.size() == first.size());
    for (size_t i = 0; i + 1 < nll.size(); ++i) {
        REQUIRE(nll[i].size() == size_t(seq_len - 1));
        CHECK_MESSAGE(std::abs(mean_of(nll[i]) - g["windows"][i]["nll_mean"].get<double>()) < nll_tol, "window " << i);
    }
    CHECK(std::abs(mean_of(nll.back()) - last["nll_mean"].get<double>()) < nll_tol);
}

TEST_CASE("eval/gptq: the evaluation's result rows, and limit divides by what it evaluated") {
    const auto *m = stories();
    if (!m) return;
    const json &g = fixture()["gptq"];
    eval_harness h("  - {name: perplexity, protocol: gptq, seq_len: 256, limit: 3, batch: 2, against_base: false}\n");
    const auto r = h.run(m->model, m->model);
    const json &nll = metric(r, "nll_mean");
    CHECK(nll["windows"] == 3);
    CHECK(nll["windows_available"] == g["n_windows"]);
    CHECK(nll["tokens_scored"] == 3 * 255);
    CHECK(nll["protocol"] == "gptq");
    CHECK(nll["dataset_sha256"] == fixture()["dataset_sha256"]);
    // limit 3 divides by 3 windows: the mean of the first three window means, not of all.
    CHECK(std::abs(nll["value"].get<double>() - g["nll_mean_first_3"].get<double>()) < nll_tol);
    const json &ppl = metric(r, "ppl");
    CHECK(ppl["value"].get<double>() == doctest::Approx(std::exp(g["nll_mean_first_3"].get<double>())).epsilon(nll_tol));
    CHECK(r.manifest["datasets"].contains("wikitext2"));
}

TEST_CASE("eval/llamacpp: chunks with BOS forced, second half scored, ppl +- uncertainty") {
    const auto *m = stories();
    if (!m) return;
    const json &l = fixture()["llamacpp"];
    const std::string raw = wiki_raw();
    const int64_t ctx = l["ctx"];
    const auto ids = m->tok->encode(raw, true);
    CHECK(ids.size() == l["n_tokens"].get<size_t>());
    CHECK(test::ids_sha256(ids) == l["tokens_sha256"].get<std::string>());
    auto windows = perplexity_windows_of_text(*m->tok, "llamacpp", true, raw, ctx).windows;
    REQUIRE(windows.size() >= l["chunks"].size());
    windows.resize(l["chunks"].size());
    const auto nll = perplexity_token_nll(m->model, windows, 1);
    for (size_t c = 0; c < windows.size(); ++c) {
        const json &want = l["chunks"][c];
        CHECK(test::ids_sha256(windows[c].tokens) == want["tokens_sha256"].get<std::string>());
        CHECK(windows[c].tokens[0] == m->tok->bos_id());
        CHECK(nll[c].size() == want["n_scored"].get<size_t>());
        double sum = 0;
        for (double x : nll[c]) sum += x;
        CHECK_MESSAGE(std::abs(sum - want["nll_sum"].get<double>()) < nll_tol * double(nll[c].size()), "chunk " << c);
    }

    eval_harness h("  - {name: perplexity, protocol: llamacpp, seq_len: " + std::to_string(ctx) + ", limit: " +
                   std::to_string(windows.size()) + ", against_base: false}\n");
    const auto r = h.run(m->model, m->model);
    const json &ppl = metric(r, "ppl");
    CHECK(ppl["tokens_scored"] == l["chunks"][0]["n_scored"].get<int64_t>() * int64_t(windows.size()));
    CHECK(ppl["value"].get<double>() == doctest::Approx(l["ppl"].get<double>()).epsilon(nll_tol));
    // llama.cpp: ppl * sqrt((mean(nll^2) - mean(nll)^2) / (count - 1))
    CHECK(ppl["stderr"].get<double>() == doctest::Approx(l["uncertainty"].get<double>()).epsilon(1e-3));
}

TEST_CASE("eval/lm-eval: rolling windows score every token of each article once; words as re.split counts them") {
    const auto *m = stories();
    if (!m) return;
    // Python: len(re.split(r"\s+", s)); leading and trailing whitespace add an empty piece each.
    CHECK(lm_eval_word_count("a b  c") == 3);
    CHECK(lm_eval_word_count(" = A = \n x y\n") == 7); // ["", "=", "A", "=", "x", "y", ""]
    CHECK(lm_eval_word_count("") == 1);
    const std::string raw = " = A = \n" + std::string(300, 'x') + " end\n = B = \n short\n";
    const int64_t seq_len = 64;
    const auto text = perplexity_windows_of_text(*m->tok, "lm-eval", true, raw, seq_len);
    REQUIRE(text.document_words.size() == 2);
    CHECK(text.document_words[0] == lm_eval_word_count(" = A = \n" + std::string(300, 'x') + " end\n"));
    for (int64_t d = 0; d < 2; ++d) {
        const std::string doc = d == 0 ? " = A = \n" + std::string(300, 'x') + " end\n" : " = B = \n short\n";
        const auto ids = m->tok->encode(doc, false);
        std::vector<int32_t> scored; // the targets of this article's windows, in order
        bool first = true;
        for (const auto &w : text.windows) {
            if (w.document != d) continue;
            CHECK(static_cast<int64_t>(w.tokens.size()) <= seq_len + 1); // seq_len fed, the last only a target
            if (first) CHECK(w.tokens[0] == m->tok->bos_id());          // the prefix token predicts the first
            first = false;
            scored.insert(scored.end(), w.tokens.begin() + w.first_scored, w.tokens.end());
        }
        CHECK(scored == ids);
    }
}

TEST_CASE("eval/kl: identical models give KL 0 and top-1 agreement 1; a perturbed one a positive KL, top-k a lower bound") {
    const auto *m = stories();
    if (!m) return;
    // A distinct model object with the same tensors: the evaluation compares against the base
    // only when they are different objects, as in the runner.
    const llama_model same = m->model;
    eval_harness h("  - {name: perplexity, protocol: gptq, seq_len: 128, limit: 2, kl_top_k: [64, 0]}\n");
    REQUIRE(h.exp.cells.size() == 2);
    for (size_t i = 0; i < 2; ++i) {
        INFO("kl_top_k " << h.cell(i).evaluations[0].options["kl_top_k"]);
        for (int pass = 0; pass < 2; ++pass) { // the second pass reads the cached base (top-k)
            const auto r = h.run(m->model, same, i);
            CHECK(metric(r, "kld_mean")["value"].get<double>() == 0.0);
            CHECK(metric(r, "kld_p99")["value"].get<double>() == 0.0);
            CHECK(metric(r, "top1_agree")["value"].get<double>() == 1.0);
            CHECK(metric(r, "ln_ppl_ratio")["value"].get<double>() == 0.0);
        }
    }
    CHECK(fs::exists(h.dir.path() / "cache" / "base_logprobs"));

    // One weight scaled: exact KL > 0, the top-64 + rest bucket KL is a lower bound of it.
    llama_model other = m->model;
    auto &down = other.layers[0].down_proj;
    down.weight = down.weight.mul(1.5);
    const double topk = metric(h.run(m->model, other, 0), "kld_mean")["value"];
    const auto exact_run = h.run(m->model, other, 1);
    const double exact = metric(exact_run, "kld_mean")["value"];
    CHECK(exact > 1e-4);
    CHECK(topk <= exact + 1e-9);
    CHECK(topk > 0.5 * exact); // 64 of 512 ids hold most of the mass
    CHECK(metric(exact_run, "top1_agree")["value"].get<double>() < 1.0);
    // ln(ppl / ppl_base): the mean over scored tokens of nll_model - nll_base.
    auto windows = perplexity_windows_of_text(*m->tok, "gptq", true, wiki_raw(), 128).windows;
    windows.resize(2);
    double diff = 0;
    const auto nb = perplexity_token_nll(m->model, windows, 1), nq = perplexity_token_nll(other, windows, 1);
    for (size_t w = 0; w < 2; ++w) diff += (mean_of(nq[w]) - mean_of(nb[w])) / 2;
    CHECK(metric(exact_run, "ln_ppl_ratio")["value"].get<double>() == doctest::Approx(diff).epsilon(1e-9));
}

TEST_CASE("eval/zeroshot: prompts, token split and per-choice log-likelihoods match lm-eval v0.4") {
    const auto *m = stories();
    if (!m) return;
    const json &z = fixture()["zeroshot"];
    loglikelihood_scorer scorer(m->model, z["max_length"].get<int64_t>());
    for (const auto &[name, items] : z["tasks"].items()) {
        const zeroshot_task task = zeroshot_task_load(zeroshot_task_file(name), datasets_dir(test::data_dir()));
        for (const auto &want : items) {
            const size_t i = want["doc_index"];
            INFO(name << " item " << i);
            const auto &item = task.items.at(i);
            CHECK(item.gold == want["gold"].get<int>());
            CHECK(item.choices == want["choices"].get<std::vector<std::string>>());
            REQUIRE(item.requests.size() == want["requests"].size());
            for (size_t c = 0; c < item.requests.size(); ++c) {
                const json &r = want["requests"][c];
                CHECK(item.requests[c].context == r["context"].get<std::string>());
                CHECK(item.requests[c].continuation == r["continuation"].get<std::string>());
                const auto [ctx_ids, cont] = lm_eval_encode_pair(*m->tok, item.requests[c].context, item.requests[c].continuation, false);
                CHECK(ctx_ids.size() == r["context_tokens"].get<size_t>());
                CHECK(cont == r["continuation_ids"].get<std::vector<int32_t>>());
            }
            const auto scores = scorer.score(*m->tok, item, false, name);
            for (size_t c = 0; c < scores.size(); ++c) {
                const json &r = want["requests"][c];
                CHECK_MESSAGE(std::abs(scores[c].loglikelihood - r["ll"].get<double>()) < nll_tol, "choice " << c);
                CHECK_MESSAGE(scores[c].is_greedy == r["is_greedy"].get<bool>(), "choice " << c);
            }
        }
        // The batched path (no KV cache; requests of all items sorted by length, right-padded, 3
        // per pass so that batches mix lengths) gives the same numbers.
        std::vector<const zeroshot_item *> batch_items;
        for (const auto &want : items) batch_items.push_back(&task.items.at(want["doc_index"].get<size_t>()));
        const auto batched = score_items_batched(m->model, z["max_length"].get<int64_t>(), 3, *m->tok, batch_items, false, name);
        REQUIRE(batched.size() == items.size());
        for (size_t k = 0; k < items.size(); ++k)
            for (size_t c = 0; c < batched[k].size(); ++c) {
                const json &r = items[k]["requests"][c];
                INFO(name << " batched item " << k << " choice " << c);
                CHECK(std::abs(batched[k][c].loglikelihood - r["ll"].get<double>()) < nll_tol);
                CHECK(batched[k][c].is_greedy == r["is_greedy"].get<bool>());
            }
    }
}

TEST_CASE("eval/zeroshot: is_greedy on continuations that are the model's own argmax tokens") {
    const auto *m = stories();
    if (!m) return;
    // The task items are all non-greedy for stories260K; these probes are TinyStories prompts
    // continued by the reference model's three argmax tokens.
    const json &probes = fixture()["zeroshot"]["greedy_probes"];
    REQUIRE(probes.size() == 2);
    loglikelihood_scorer scorer(m->model, 512);
    for (const auto &p : probes) {
        INFO(p["context"].get<std::string>() << " | " << p["continuation"].get<std::string>());
        zeroshot_item item;
        item.requests.push_back({p["context"].get<std::string>(), p["continuation"].get<std::string>()});
        CHECK(lm_eval_encode_pair(*m->tok, item.requests[0].context, item.requests[0].continuation, false).second ==
              p["continuation_ids"].get<std::vector<int32_t>>());
        const auto score = scorer.score(*m->tok, item, false, "probe").at(0);
        CHECK(std::abs(score.loglikelihood - p["ll"].get<double>()) < nll_tol);
        CHECK(score.is_greedy == p["is_greedy"].get<bool>());
    }
    CHECK((probes[0]["is_greedy"].get<bool>() || probes[1]["is_greedy"].get<bool>()));
}

TEST_CASE("eval/zeroshot: lm-eval's context/continuation split") {
    const auto *m = stories();
    if (!m) return;
    const auto &tok = *m->tok;
    // Trailing whitespace of the context (any, as str.rstrip) moves into the continuation.
    auto [c1, k1] = lm_eval_encode_pair(tok, "Answer: \n", "yes", false);
    CHECK(c1 == tok.encode("Answer:", false));
    const auto whole = tok.encode("Answer: \nyes", false);
    CHECK(k1 == std::vector<int32_t>(whole.begin() + static_cast<long>(c1.size()), whole.end()));
    // An empty context is the prefix token (BOS here).
    auto [c2, k2] = lm_eval_encode_pair(tok, "", " yes", false);
    CHECK(c2 == std::vector<int32_t>{tok.bos_id()});
    CHECK(k2 == tok.encode(" yes", false));
    // With add_bos both encodings start with BOS and the split is unchanged.
    auto [c3, k3] = lm_eval_encode_pair(tok, "Question: why?\nAnswer:", " no", true);
    CHECK(c3.front() == tok.bos_id());
    CHECK(k3 == lm_eval_encode_pair(tok, "Question: why?\nAnswer:", " no", false).second);
}

TEST_CASE("eval/zeroshot: samples file, metrics, and resume of an interrupted run") {
    const auto *m = stories();
    if (!m) return;
    const json &z = fixture()["zeroshot"]["tasks"];
    eval_harness h("  - {name: zeroshot, tasks: [piqa, winogrande], limit: 4}\n");
    log_set_quiet(true);
    const auto first = h.run(m->model, m->model);
    for (const std::string task : {"piqa", "winogrande"}) {
        INFO(task);
        const auto rows = read_jsonl(first.dir / ("samples_" + task + ".jsonl"));
        REQUIRE(rows.size() == 4);
        double acc = 0;
        for (size_t i = 0; i < 4; ++i) {
            const json &want = z[task][i];
            CHECK(rows[i]["doc_index"] == i);
            CHECK(rows[i]["gold"] == want["gold"]);
            CHECK(rows[i]["doc_hash"].get<std::string>().size() == 64);
            for (size_t c = 0; c < want["requests"].size(); ++c)
                CHECK(std::abs(rows[i]["loglikelihoods"][c].get<double>() - want["requests"][c]["ll"].get<double>()) < nll_tol);
            CHECK(rows[i]["pred"] == want["pred"]);
            acc += want["pred"] == want["gold"] ? 1 : 0;
        }
        const json &row = metric(first, task + ".acc");
        CHECK(row["value"].get<double>() == doctest::Approx(acc / 4));
        CHECK(row["items"] == 4);
        CHECK(row["resumed_items"] == 0);
        CHECK(row["template"] == "lm-eval v0.4 " + task);
        if (task == "piqa") CHECK(metric(first, "piqa.acc_norm")["items"] == 4);
    }

    // Interrupted after two PIQA items: the rerun of the same cell takes those two from the
    // samples file and scores the rest, and ends with the same samples, byte for byte.
    const std::string piqa_full = test::read_text_file(first.dir / "samples_piqa.jsonl");
    const std::string wino_full = test::read_text_file(first.dir / "samples_winogrande.jsonl");
    {
        std::ofstream cut(first.dir / "samples_piqa.jsonl", std::ios::trunc);
        cut << piqa_full.substr(0, piqa_full.find('\n', piqa_full.find('\n') + 1) + 1) << "{\"doc_index\": 2, \"trunc";
    }
    json manifest = first.manifest;
    manifest["status"] = "failed";
    write_file_atomic(first.dir / "manifest.json", manifest.dump(1));
    const auto second = h.run(m->model, m->model);
    CHECK(metric(second, "piqa.acc")["resumed_items"] == 2);
    CHECK(metric(second, "winogrande.acc")["resumed_items"] == 4);
    CHECK(test::read_text_file(second.dir / "samples_piqa.jsonl") == piqa_full);
    CHECK(test::read_text_file(second.dir / "samples_winogrande.jsonl") == wino_full);

    // A completed run is never resumed from, and it supersedes the older interrupted one: the
    // next run scores everything again.
    const auto third = h.run(m->model, m->model);
    CHECK(metric(third, "piqa.acc")["resumed_items"] == 0);
    CHECK(test::read_text_file(third.dir / "samples_piqa.jsonl") == piqa_full);
    log_set_quiet(false);
}

} // TEST_SUITE

TEST_CASE("eval/zeroshot: a continuation longer than max_length is scored on its last max_length tokens, and flagged") {
    const auto *m = stories();
    if (!m) return;
    const zeroshot_task task = zeroshot_task_load(zeroshot_task_file("piqa"), datasets_dir(test::data_dir()));
    const auto &item = task.items.at(0);
    const int64_t max_len = 6; // shorter than every PIQA solution under the 512-token vocabulary
    loglikelihood_scorer scorer(m->model, max_len);
    const auto seq = scorer.score(*m->tok, item, false, "piqa 0");
    const auto batched = score_items_batched(m->model, max_len, 2, *m->tok, {&item}, false, "piqa 0").at(0);
    REQUIRE(seq.size() == batched.size());
    for (size_t c = 0; c < seq.size(); ++c) {
        const auto cont = lm_eval_encode_pair(*m->tok, item.requests[c].context, item.requests[c].continuation, false).second;
        REQUIRE(int64_t(cont.size()) > max_len);
        CHECK(seq[c].truncated);
        CHECK(batched[c].truncated);
        // The same max_length tokens scored by both paths, from the same max_length + 1 window.
        CHECK(std::abs(seq[c].loglikelihood - batched[c].loglikelihood) < nll_tol);
        CHECK(seq[c].loglikelihood < 0);
    }
}
