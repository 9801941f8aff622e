// Perplexity of a text corpus under three named protocols, and divergence from the base model.
//
//   gptq      (FlexQ, GPTQ, AWQ, SmoothQuant, OmniQuant): the corpus' HF rows joined with "\n\n",
//             tokenized once (BOS only at the start, when the tokenizer adds one), cut into
//             non-overlapping windows of seq_len, remainder dropped; each window's mean
//             cross-entropy over its seq_len-1 shifted positions; ppl = exp(mean over windows).
//             For C4: `windows` random windows of seq_len from random documents with at least
//             seq_len tokens (seed 0 in the papers), each document tokenized on its own.
//   llamacpp  (llama.cpp's perplexity tool): the raw file, chunks of seq_len (512) tokens with
//             BOS forced at each chunk start, only the second half of each chunk scored;
//             ppl = exp(mean token NLL) ± from the per-token variance.
//   lm-eval   (lm-evaluation-harness `wikitext`): one document per article, rolling windows of
//             seq_len with the whole article scored once; word perplexity = exp(sum NLL / words),
//             words counted as lm-eval does (len(re.split(r"\s+", article))). Not lm-eval's
//             number yet: lm-eval scores the article after its wikitext_detokenizer, and reads
//             the articles of the `wikitext_document_level` dataset; both are not reproduced here.
//
// `limit` keeps the first N windows (lm-eval: the first N articles) and every number divides by
// what was evaluated (the OmniQuant-derived code FlexQ uses divides by the full window count).
// Dataset paths are relative to the data directory's datasets/ folder. The correctness evidence
// against an independent Python reference is tests/eval/ (docs/evaluation-protocols.md).
//
// Against the base model (the unquantized model of the same cell) it also reports KL divergence
// (mean, p99), ln(ppl / ppl_base) ± stderr and top-1 agreement per scored position. The base's
// per-position summary (its NLL, argmax and top-k log-probs) is cached on disk keyed by the
// model identity, dtype, device and the hash of the scored token stream, so a sweep of quantizers
// computes the base once. KL from the top-k summary lumps the remaining vocabulary into one
// bucket: a lower bound of the exact KL (exact when the rest has no mass); `kl_top_k: 0` runs the
// base model on every window instead and computes the exact KL.
#include "eval/perplexity.h"

#include "eval/evaluation.h"

#include "core/error.h"
#include "core/log.h"
#include "core/progress.h"
#include "core/sha256.h"
#include "data/corpus.h"
#include "data/data_files.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

namespace qb {

namespace fs = std::filesystem;

namespace {

using window = perplexity_window;

// Per scored position: the NLL of the actual next token and, for divergences, the distribution.
struct base_summary {
    std::vector<float> nll;     // [n]
    std::vector<int32_t> top1;  // [n]
    std::vector<int32_t> top_ids; // [n * k]
    std::vector<float> top_lp;  // [n * k] log-probs
    int64_t k = 0;
};

bool read_cache(const fs::path &p, base_summary &s, int64_t n, int64_t k) {
    std::ifstream in(p, std::ios::binary);
    if (!in) return false;
    int64_t header[2];
    in.read(reinterpret_cast<char *>(header), sizeof header);
    if (!in || header[0] != n || header[1] != k) return false;
    s.k = k;
    s.nll.resize(n);
    s.top1.resize(n);
    s.top_ids.resize(n * k);
    s.top_lp.resize(n * k);
    in.read(reinterpret_cast<char *>(s.nll.data()), n * 4);
    in.read(reinterpret_cast<char *>(s.top1.data()), n * 4);
    in.read(reinterpret_cast<char *>(s.top_ids.data()), n * k * 4);
    in.read(reinterpret_cast<char *>(s.top_lp.data()), n * k * 4);
    return static_cast<bool>(in);
}

void write_cache(const fs::path &p, const base_summary &s) {
    fs::create_directories(p.parent_path());
    fs::path tmp = p;
    tmp += ".tmp";
    {
        std::ofstream out(tmp, std::ios::binary);
        const int64_t header[2] = {static_cast<int64_t>(s.nll.size()), s.k};
        out.write(reinterpret_cast<const char *>(header), sizeof header);
        out.write(reinterpret_cast<const char *>(s.nll.data()), static_cast<std::streamsize>(s.nll.size() * 4));
        out.write(reinterpret_cast<const char *>(s.top1.data()), static_cast<std::streamsize>(s.top1.size() * 4));
        out.write(reinterpret_cast<const char *>(s.top_ids.data()), static_cast<std::streamsize>(s.top_ids.size() * 4));
        out.write(reinterpret_cast<const char *>(s.top_lp.data()), static_cast<std::streamsize>(s.top_lp.size() * 4));
    }
    fs::rename(tmp, p);
}

double quantile_of(std::vector<double> v, double q) {
    if (v.empty()) return NAN;
    std::sort(v.begin(), v.end());
    return v[static_cast<size_t>(q * double(v.size() - 1) + 0.5)];
}

// How many windows from `wi` on share one forward pass: equal lengths (all protocols use fixed
// windows except lm-eval's last window of an article), at most `batch`.
size_t batch_extent(const std::vector<window> &windows, size_t wi, int64_t batch) {
    size_t same = 1;
    while (same < static_cast<size_t>(batch) && wi + same < windows.size() &&
           windows[wi + same].tokens.size() == windows[wi].tokens.size())
        ++same;
    return same;
}

// The ids of windows [wi, wi + same) as one [same, t] int64 tensor on `device`.
at::Tensor batch_ids(const std::vector<window> &windows, size_t wi, size_t same, at::Device device) {
    std::vector<int64_t> ids;
    for (size_t b = 0; b < same; ++b) ids.insert(ids.end(), windows[wi + b].tokens.begin(), windows[wi + b].tokens.end());
    const int64_t t = static_cast<int64_t>(windows[wi].tokens.size());
    return at::tensor(ids, at::TensorOptions().dtype(at::kLong)).view({static_cast<int64_t>(same), t}).to(device);
}

// Log-probs of a batch: the last token of each window is only a target, so the model reads
// tokens[0, t-1) and position p predicts token p+1. [B, T-1, V] fp32.
at::Tensor batch_logp(const llama_model &model, const at::Tensor &all) {
    return at::log_softmax(model.forward(all.narrow(1, 0, all.size(1) - 1)), -1);
}

// NLL of one window's scored tokens [first_scored, t) from its log-probs [T-1, V] (position p
// predicts token p+1): fp64 on the CPU, converted before any sum.
at::Tensor scored_nll(const at::Tensor &logp, const at::Tensor &ids, int64_t first_scored) {
    const int64_t n = ids.size(0) - first_scored;
    auto targets = ids.narrow(0, first_scored, n).unsqueeze(1);
    return (-logp.narrow(0, first_scored - 1, n).gather(1, targets).squeeze(1)).to(at::kDouble).cpu().contiguous();
}

class perplexity final : public evaluation {
public:
    explicit perplexity(const json &o)
        : dataset_(o["dataset"]), path_(o["path"]), field_(o["field"]), protocol_(o["protocol"]), seq_len_(o["seq_len"]),
          windows_(o["windows"]), limit_(o["limit"]), batch_(o["batch"]), against_base_(o["against_base"]), top_k_(o["kl_top_k"]) {}

    status supports(const eval_context &ctx) const override {
        if (!ctx.tok) return status::failure(status_code::unsupported_option, "the model has no tokenizer (a synthetic model has no text)");
        if (protocol_ == "lm-eval" && dataset_ != "wikitext2")
            return status::failure(status_code::unsupported_option, "protocol lm-eval (word perplexity) is defined for wikitext2 only");
        if (dataset_ == "c4" && protocol_ != "gptq")
            return status::failure(status_code::unsupported_option, "C4 is sampled the papers' way only under protocol gptq");
        return status::success();
    }

    void run(eval_context &ctx) const override {
        c10::InferenceMode guard;
        const int64_t seq_len = seq_len_ > 0 ? seq_len_ : (protocol_ == "llamacpp" ? 512 : 2048);
        if (seq_len > ctx.model.config.max_seq_len)
            fail("perplexity: seq_len {} exceeds the model's context of {}", seq_len, ctx.model.config.max_seq_len);
        const std::string rel = !path_.empty() ? path_
                                : dataset_ == "wikitext2" ? "wikitext2/wiki.test.raw"
                                : dataset_ == "c4"        ? "c4/c4-validation.00000-of-00008.json.gz"
                                                          : "";
        if (rel.empty()) fail("perplexity: dataset {} needs a path (relative to the data directory's datasets/)", dataset_);
        const data_file_info file = data_file_verified(datasets_dir(ctx.data), rel);
        ctx.record.add_dataset(dataset_, file.to_json());

        std::vector<int64_t> document_words;
        std::vector<window> windows = make_windows(*ctx.tok, file, seq_len, ctx.cell.seed, document_words);
        // `limit` keeps the first N windows, except under lm-eval where it keeps the first N
        // articles: word perplexity divides by the words of what was scored, so it must not cut
        // an article. Either way every result divides by what was evaluated.
        int64_t available = static_cast<int64_t>(windows.size()), words = 0;
        if (protocol_ == "lm-eval") {
            available = static_cast<int64_t>(document_words.size());
            const int64_t docs = limit_ > 0 ? std::min(limit_, available) : available;
            std::erase_if(windows, [&](const window &w) { return w.document >= docs; });
            for (int64_t d = 0; d < docs; ++d) words += document_words[static_cast<size_t>(d)];
        } else if (limit_ > 0 && limit_ < available) {
            windows.resize(static_cast<size_t>(limit_));
        }
        if (windows.empty()) fail("perplexity: {} gives no complete window of {} tokens", rel, seq_len);
        const std::string hash = perplexity_tokens_hash(windows);
        int64_t n_scored = 0;
        for (const auto &w : windows) n_scored += static_cast<int64_t>(w.tokens.size()) - w.first_scored;

        // Divergences need the base; the cache makes the base cost once per token stream.
        const bool divergence = against_base_ && &ctx.base != &ctx.model;
        base_summary base;
        bool base_cached = false;
        fs::path cache_file;
        if (divergence && top_k_ > 0) {
            const std::string key = json_hash(json{{"model", ctx.model_identity}, {"dtype", ctx.cell.dtype}, {"device", ctx.cell.device},
                                                   {"tokens", hash}, {"k", top_k_}, {"version", 1}});
            cache_file = ctx.cache_dir / "base_logprobs" / (key.substr(0, 32) + ".bin");
            base_cached = read_cache(cache_file, base, n_scored, top_k_);
            if (base_cached) log_info("perplexity: base log-probs from cache {}", cache_file.string());
            else {
                base.k = top_k_;
                base.nll.reserve(n_scored);
            }
        }

        std::vector<double> window_nll;    // mean NLL per window (gptq)
        std::vector<double> token_nll;     // per scored token (llamacpp, lm-eval, divergences)
        std::vector<double> kld, dnll;     // per scored token vs base
        int64_t agree = 0;
        token_nll.reserve(n_scored);
        const auto device = ctx.model.device();
        progress bar(fmt::format("perplexity[{}]", protocol_), windows.size(), "win");
        int64_t pos = 0; // index of the next scored token in the base summary
        for (size_t wi = 0; wi < windows.size();) {
            const size_t same = batch_extent(windows, wi, batch_);
            auto all = batch_ids(windows, wi, same, device);
            const int64_t t = all.size(1);
            auto logp = batch_logp(ctx.model, all);
            at::Tensor base_logp;
            if (divergence && (top_k_ == 0 || !base_cached)) base_logp = batch_logp(ctx.base, all);
            for (size_t b = 0; b < same; ++b) {
                const auto &w = windows[wi + b];
                const int64_t f = w.first_scored;
                const int64_t n = t - f;
                auto targets = all[b].narrow(0, f, n).unsqueeze(1);            // [n, 1]
                auto lp = logp[b].narrow(0, f - 1, n);                          // [n, V]: position p predicts token p+1
                auto nll = scored_nll(logp[b], all[b], f);                      // [n] fp64 on the CPU
                const double *nll_p = nll.data_ptr<double>();
                double sum = 0;
                for (int64_t i = 0; i < n; ++i) sum += nll_p[i];
                token_nll.insert(token_nll.end(), nll_p, nll_p + n);
                window_nll.push_back(sum / double(n));
                if (!divergence) continue;

                if (top_k_ == 0) { // exact, over the full vocabulary
                    auto blp = base_logp[b].narrow(0, f - 1, n);
                    auto k = (blp.exp() * (blp - lp)).sum(-1).to(at::kDouble).cpu().contiguous();
                    auto bn = (-blp.gather(1, targets).squeeze(1)).to(at::kDouble).cpu().contiguous();
                    auto ag = (blp.argmax(-1) == lp.argmax(-1)).to(at::kInt).cpu().contiguous();
                    for (int64_t i = 0; i < n; ++i) {
                        kld.push_back(std::max(0.0, k.data_ptr<double>()[i]));
                        dnll.push_back(nll_p[i] - bn.data_ptr<double>()[i]);
                        agree += ag.data_ptr<int32_t>()[i];
                    }
                    continue;
                }
                if (!base_cached) { // the base's summary of this window, appended in scoring order
                    auto blp = base_logp[b].narrow(0, f - 1, n);
                    auto bn = (-blp.gather(1, targets).squeeze(1)).cpu().contiguous();
                    auto [vals, idx] = blp.topk(top_k_, -1);
                    auto bv = vals.cpu().contiguous();
                    auto bi = idx.to(at::kInt).cpu().contiguous();
                    base.nll.insert(base.nll.end(), bn.data_ptr<float>(), bn.data_ptr<float>() + n);
                    for (int64_t i = 0; i < n; ++i) base.top1.push_back(bi.data_ptr<int32_t>()[i * top_k_]);
                    base.top_ids.insert(base.top_ids.end(), bi.data_ptr<int32_t>(), bi.data_ptr<int32_t>() + n * top_k_);
                    base.top_lp.insert(base.top_lp.end(), bv.data_ptr<float>(), bv.data_ptr<float>() + n * top_k_);
                }
                // KL over the base's top-k ids plus one bucket for the rest of the vocabulary.
                auto lp_cpu = lp.cpu().contiguous();
                const float *lpp = lp_cpu.data_ptr<float>();
                const int64_t vocab = lp.size(1);
                auto test_top1 = lp.argmax(-1).to(at::kInt).cpu().contiguous();
                for (int64_t i = 0; i < n; ++i, ++pos) {
                    double kl = 0, p_in = 0, q_in = 0;
                    for (int64_t j = 0; j < top_k_; ++j) {
                        const double blpj = base.top_lp[pos * top_k_ + j];
                        const double qlp = lpp[i * vocab + base.top_ids[pos * top_k_ + j]];
                        const double p = std::exp(blpj);
                        kl += p * (blpj - qlp);
                        p_in += p;
                        q_in += std::exp(qlp);
                    }
                    const double p_rest = std::max(0.0, 1.0 - p_in), q_rest = std::max(1e-30, 1.0 - q_in);
                    if (p_rest > 0) kl += p_rest * (std::log(p_rest) - std::log(q_rest));
                    kld.push_back(std::max(0.0, kl));
                    dnll.push_back(nll_p[i] - base.nll[pos]);
                    agree += base.top1[pos] == test_top1.data_ptr<int32_t>()[i];
                }
            }
            bar.advance(same);
            wi += same;
        }
        bar.finish();
        if (divergence && top_k_ > 0 && !base_cached) {
            write_cache(cache_file, base);
            log_info("perplexity: base log-probs cached in {}", cache_file.string());
        }

        emit(ctx, file, hash, windows.size(), available, seq_len, n_scored, words, window_nll, token_nll, kld, dnll, agree);
    }

private:
    std::vector<window> make_windows(const tokenizer &tok, const data_file_info &file, int64_t seq_len, uint64_t seed,
                                     std::vector<int64_t> &document_words) const {
        std::vector<window> out;
        const bool bos = tok.add_bos_default() && tok.bos_id() >= 0;
        if (dataset_ == "c4") {
            // The papers' C4 sampling (GPTQ datautils): pick a random document with more than
            // seq_len tokens, then a random window in it; `windows` times, seeded.
            const auto docs = read_jsonl_gz_field(file.path, field_.empty() ? "text" : field_);
            std::mt19937_64 rng(seed);
            for (int64_t n = 0; n < windows_; ++n) {
                for (int attempt = 0;; ++attempt) {
                    if (attempt > 100000) fail("perplexity: C4 has too few documents longer than {} tokens", seq_len);
                    const auto &doc = docs[rng() % docs.size()];
                    auto ids = tok.encode(doc, bos);
                    if (static_cast<int64_t>(ids.size()) <= seq_len) continue;
                    const size_t start = rng() % (ids.size() - static_cast<size_t>(seq_len));
                    out.push_back({std::vector<int32_t>(ids.begin() + static_cast<long>(start),
                                                        ids.begin() + static_cast<long>(start) + seq_len),
                                   1});
                    break;
                }
            }
            return out;
        }
        // jsonl: the documents' text field, joined like rows; text / wikitext2: the file as is.
        const std::string raw = dataset_ == "jsonl" ? join_rows(read_jsonl_field(file.path, field_.empty() ? "text" : field_))
                                                    : read_text_file(file.path);
        auto text = perplexity_windows_of_text(tok, protocol_, dataset_ == "wikitext2", raw, seq_len);
        document_words = std::move(text.document_words);
        return std::move(text.windows);
    }

    void emit(eval_context &ctx, const data_file_info &file, const std::string &hash, size_t n_windows, int64_t available,
              int64_t seq_len, int64_t n_scored, int64_t words, const std::vector<double> &window_nll,
              const std::vector<double> &token_nll, const std::vector<double> &kld, const std::vector<double> &dnll,
              int64_t agree) const {
        auto base_row = [&](const std::string &metric, double value, const std::string &unit) {
            json r = metric_row("perplexity", metric, value, unit);
            r["protocol"] = protocol_;
            r["dataset"] = dataset_;
            r["dataset_sha256"] = file.sha256;
            r["seq_len"] = seq_len;
            r["windows"] = n_windows;
            r[protocol_ == "lm-eval" ? "documents_available" : "windows_available"] = available;
            r["tokens_scored"] = n_scored;
            r["tokens_hash"] = hash;
            return r;
        };
        double mean_nll = 0, se = 0;
        std::string basis;
        if (protocol_ == "gptq") {
            auto [m, sd] = mean_sd(window_nll); // exp of the mean of window means, as the papers compute it
            mean_nll = m;
            se = sd / std::sqrt(double(window_nll.size()));
            basis = "between windows";
        } else {
            auto [m, sd] = mean_sd(token_nll);
            mean_nll = m;
            se = sd / std::sqrt(double(token_nll.size()));
            basis = "between tokens (as llama.cpp; tokens are correlated, so a lower bound)";
        }
        json ppl = base_row("ppl", std::exp(mean_nll), "");
        ppl["stderr"] = std::exp(mean_nll) * se; // delta method
        ppl["stderr_basis"] = basis;
        ctx.record.add_metric(ppl);
        json nll = base_row("nll_mean", mean_nll, "nats/token");
        nll["stderr"] = se;
        ctx.record.add_metric(nll);
        if (protocol_ == "lm-eval") {
            double sum = 0;
            for (double x : token_nll) sum += x;
            json wp = base_row("word_perplexity", std::exp(sum / double(words)), "");
            wp["words"] = words;
            ctx.record.add_metric(wp);
        }
        if (!kld.empty()) {
            auto [km, ksd] = mean_sd(kld);
            json k = base_row("kld_mean", km, "nats");
            k["stderr"] = ksd / std::sqrt(double(kld.size()));
            k["kl_method"] = top_k_ > 0 ? fmt::format("base top-{} + rest bucket (lower bound)", top_k_) : "exact, full vocabulary";
            ctx.record.add_metric(k);
            json k99 = base_row("kld_p99", quantile_of(kld, 0.99), "nats");
            ctx.record.add_metric(k99);
            auto [dm, dsd] = mean_sd(dnll);
            json lr = base_row("ln_ppl_ratio", dm, "");
            lr["stderr"] = dsd / std::sqrt(double(dnll.size()));
            lr["definition"] = "mean over scored tokens of nll_model - nll_base = ln(ppl/ppl_base) for token-mean protocols";
            ctx.record.add_metric(lr);
            const double p = double(agree) / double(kld.size());
            json a = base_row("top1_agree", p, "fraction");
            a["stderr"] = std::sqrt(p * (1 - p) / double(kld.size()));
            ctx.record.add_metric(a);
        }
    }

    std::string dataset_, path_, field_, protocol_;
    int64_t seq_len_, windows_, limit_, batch_;
    bool against_base_;
    int64_t top_k_;
};

} // namespace

std::unique_ptr<evaluation> make_perplexity_evaluation(const json &options) { return std::make_unique<perplexity>(options); }

std::string perplexity_tokens_hash(const std::vector<perplexity_window> &windows) {
    sha256 h;
    for (const auto &w : windows) {
        h.update(w.tokens.data(), w.tokens.size() * sizeof(int32_t));
        const int64_t f = w.first_scored;
        h.update(&f, sizeof f);
    }
    return h.hex_digest();
}

int64_t lm_eval_word_count(std::string_view text) {
    // re.split(r"\s+", text) gives one more piece than there are whitespace runs, counting the
    // empty pieces before a leading and after a trailing run.
    auto space = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; };
    int64_t runs = 0;
    for (size_t i = 0; i < text.size(); ++i)
        if (space(text[i]) && (i == 0 || !space(text[i - 1]))) ++runs;
    return runs + 1;
}

perplexity_text_windows perplexity_windows_of_text(const tokenizer &tok, const std::string &protocol, bool wikitext,
                                                   std::string_view raw, int64_t seq_len) {
    perplexity_text_windows out;
    const bool bos = tok.add_bos_default() && tok.bos_id() >= 0;
    const size_t len = static_cast<size_t>(seq_len);
    if (protocol == "gptq") {
        // One token stream (BOS only at its start), non-overlapping windows, remainder dropped.
        const auto ids = tok.encode(wikitext ? join_rows(wikitext_hf_rows(raw)) : std::string(raw), bos);
        for (size_t s = 0; s + len <= ids.size(); s += len)
            out.windows.push_back({std::vector<int32_t>(ids.begin() + static_cast<long>(s), ids.begin() + static_cast<long>(s + len)), 1});
    } else if (protocol == "llamacpp") {
        // llama.cpp's perplexity: the raw text tokenized once, chunks of n_ctx with the chunk's
        // first token replaced by BOS; logits at positions n_ctx/2 .. n_ctx-2 are scored, i.e.
        // tokens n_ctx/2+1 .. n_ctx-1 (n_ctx/2 - 1 per chunk).
        const auto ids = tok.encode(raw, bos);
        for (size_t s = 0; s + len <= ids.size(); s += len) {
            perplexity_window w{std::vector<int32_t>(ids.begin() + static_cast<long>(s), ids.begin() + static_cast<long>(s + len)),
                                seq_len / 2 + 1};
            if (bos) w.tokens[0] = tok.bos_id();
            out.windows.push_back(std::move(w));
        }
    } else if (protocol == "lm-eval") {
        // lm-eval's get_rolling_token_windows with context_len 1: the first window predicts the
        // first seq_len tokens from a prefix token (BOS, else EOS); each later one predicts the
        // next tokens with the seq_len tokens before them as context.
        const int32_t prefix = tok.bos_id() >= 0 ? tok.bos_id() : tok.eos_id();
        const auto docs = wikitext ? wikitext_articles(raw) : std::vector<std::string>{std::string(raw)};
        for (size_t d = 0; d < docs.size(); ++d) {
            out.document_words.push_back(lm_eval_word_count(docs[d]));
            const auto ids = tok.encode(docs[d], false);
            std::vector<int32_t> seq;
            if (prefix >= 0) seq.push_back(prefix);
            seq.insert(seq.end(), ids.begin(), ids.end());
            const int64_t n = static_cast<int64_t>(seq.size());
            for (int64_t s = 1; s < n;) {
                const int64_t e = std::min(n, s + seq_len);
                const int64_t b = std::max<int64_t>(0, e - seq_len - 1);
                out.windows.push_back({std::vector<int32_t>(seq.begin() + b, seq.begin() + e), s - b, static_cast<int64_t>(d)});
                s = e;
            }
        }
    } else {
        fail("perplexity: unknown protocol '{}' (gptq, llamacpp, lm-eval)", protocol);
    }
    return out;
}

std::vector<std::vector<double>> perplexity_token_nll(const llama_model &model, const std::vector<perplexity_window> &windows,
                                                      int64_t batch) {
    c10::InferenceMode guard;
    std::vector<std::vector<double>> out;
    for (size_t wi = 0; wi < windows.size();) {
        const size_t same = batch_extent(windows, wi, batch);
        auto all = batch_ids(windows, wi, same, model.device());
        auto logp = batch_logp(model, all);
        for (size_t b = 0; b < same; ++b) {
            auto nll = scored_nll(logp[b], all[b], windows[wi + b].first_scored);
            out.emplace_back(nll.data_ptr<double>(), nll.data_ptr<double>() + nll.numel());
        }
        wi += same;
    }
    return out;
}

} // namespace qb
