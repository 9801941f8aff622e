// Calibration windows, activation statistics and layer-wise sensitivity (calibration.h).
#include "quant/calibration.h"

#include "core/error.h"
#include "core/log.h"
#include "data/corpus.h"
#include "data/data_files.h"
#include "quant/plot_png.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <random>

namespace qb {

namespace fs = std::filesystem;

json calibration_options::to_json() const {
    return {{"dataset", dataset}, {"split", split}, {"path", path}, {"windows", windows}, {"seq_len", seq_len}, {"seed", seed}};
}

std::vector<option_spec> calibration_option_specs() {
    return {
        {"calib_dataset", option_type::choice, "wikitext2", "calibration text: wikitext2, c4, or text (a plain file named by calib_path)",
         -INFINITY, INFINITY, {"wikitext2", "c4", "text"}},
        {"calib_split", option_type::choice, "validation", "split of calib_dataset (the test split is what perplexity reports on)",
         -INFINITY, INFINITY, {"train", "validation", "test"}},
        {"calib_path", option_type::string, "", "file relative to the data directory (overrides calib_dataset/calib_split)"},
        {"calib_windows", option_type::integer, 8, "calibration windows drawn at seeded random positions", 1, 4096},
        {"calib_seq_len", option_type::integer, 512, "tokens per calibration window", 2, 1 << 20},
        {"calib_seed", option_type::integer, 0, "seed of the window positions (and of random tokens for a model without text)", 0,
         9007199254740991.0},
        {"calib_batch", option_type::integer, 4, "windows per forward pass during calibration", 1, 4096},
    };
}

calibration_options calibration_from_options(const json &o) {
    calibration_options c;
    c.dataset = o.at("calib_dataset");
    c.split = o.at("calib_split");
    c.path = o.at("calib_path");
    c.windows = o.at("calib_windows");
    c.seq_len = o.at("calib_seq_len");
    c.seed = o.at("calib_seed");
    return c;
}

namespace {

std::string calibration_file(const calibration_options &o) {
    if (!o.path.empty()) return o.path;
    if (o.dataset == "wikitext2") {
        const std::string s = o.split == "validation" ? "valid" : o.split;
        return "wikitext2/wiki." + s + ".raw";
    }
    if (o.dataset == "c4")
        return o.split == "train" ? "c4/c4-train.00000-of-01024.json.gz" : "c4/c4-validation.00000-of-00008.json.gz";
    fail("calibration: calib_dataset {} needs calib_path (a file relative to the data directory)", o.dataset);
}

} // namespace

calibration_set calibration_tokens(const llama_model &model, const quantize_context &ctx, const calibration_options &opt) {
    calibration_set out;
    const int64_t t = opt.seq_len, w = opt.windows;
    if (t > model.config.max_seq_len) fail("calibration: calib_seq_len {} exceeds the model's context of {}", t, model.config.max_seq_len);
    std::mt19937_64 rng(opt.seed);
    std::vector<int64_t> ids;
    ids.reserve(size_t(w * t));
    if (!ctx.tok) {
        // No tokenizer means no text (synthetic weights): uniform random token ids, seeded. The
        // statistics then describe the network on noise input, which is what such a model has.
        for (int64_t i = 0; i < w * t; ++i) ids.push_back(int64_t(rng() % uint64_t(model.config.vocab_size)));
        out.source = {{"kind", "random_tokens"}, {"windows", w}, {"seq_len", t}, {"seed", opt.seed},
                      {"note", "the model has no tokenizer (synthetic): seeded uniform random token windows, not text"}};
    } else {
        if (!ctx.data) fail("calibration: no data directory was given (needed for {})", calibration_file(opt));
        const data_file_info file = data_file_verified(datasets_dir(*ctx.data), calibration_file(opt));
        if (ctx.add_dataset) ctx.add_dataset("calibration", file.to_json());
        const auto &tok = *ctx.tok;
        const bool bos = tok.add_bos_default() && tok.bos_id() >= 0;
        if (opt.dataset == "c4" && opt.path.empty()) {
            // GPTQ's C4 sampling: a random document longer than the window, a random window in it.
            const auto docs = read_jsonl_gz_field(file.path, "text");
            if (docs.empty()) fail("calibration: {} holds no documents", file.path.string());
            for (int64_t n = 0; n < w; ++n)
                for (int attempt = 0;; ++attempt) {
                    if (attempt > 100000) fail("calibration: {} has too few documents longer than {} tokens", file.path.string(), t);
                    const auto doc = tok.encode(docs[rng() % docs.size()], bos);
                    if (int64_t(doc.size()) <= t) continue;
                    const size_t start = rng() % (doc.size() - size_t(t));
                    ids.insert(ids.end(), doc.begin() + long(start), doc.begin() + long(start) + t);
                    break;
                }
        } else {
            const std::string raw = read_text_file(file.path);
            const std::string text = opt.dataset == "wikitext2" ? join_rows(wikitext_hf_rows(raw)) : raw;
            const auto all = tok.encode(text, bos);
            if (int64_t(all.size()) < t)
                fail("calibration: {} has {} tokens, fewer than one window of {}", file.path.string(), all.size(), t);
            // Random window starts over the whole split (with replacement), seeded.
            for (int64_t n = 0; n < w; ++n) {
                const size_t start = rng() % (all.size() - size_t(t) + 1);
                ids.insert(ids.end(), all.begin() + long(start), all.begin() + long(start) + t);
            }
        }
        out.source = {{"kind", "text"}, {"dataset", opt.dataset}, {"split", opt.split}, {"file", file.to_json()},
                      {"windows", w}, {"seq_len", t}, {"seed", opt.seed}};
    }
    out.tokens = at::tensor(ids, at::TensorOptions().dtype(at::kLong)).view({w, t}).to(model.device());
    return out;
}

namespace {

// A temporary runtime on one linear: computes the full-precision output, and on request the
// output with the input fake-quantized, its error, and per-channel input absmax. Accumulators are
// mutable: runtimes are const by interface, and each probe belongs to one scan.
class probe_runtime final : public linear_runtime {
public:
    probe_runtime(const linear_layer &layer, activation_quant low, bool measure, bool quantized_output, bool record_absmax)
        : w_(layer.weight), b_(layer.bias), low_(low), measure_(measure), quantized_output_(quantized_output), record_(record_absmax) {}

    at::Tensor forward(const at::Tensor &x) const override {
        auto bias = b_.defined() ? std::optional<at::Tensor>(b_) : std::nullopt;
        if (record_) {
            auto m = x.detach().abs().to(at::kFloat).reshape({-1, x.size(-1)}).amax(0);
            absmax = absmax.defined() ? at::maximum(absmax, m) : m;
        }
        auto y = at::linear(x, w_, bias);
        if (!measure_ && !quantized_output_) return y;
        auto yq = at::linear(low_.apply(x), w_, bias);
        if (measure_) {
            auto yf = y.to(at::kFloat);
            err2 += (yq.to(at::kFloat) - yf).pow(2).sum().item<double>();
            ref2 += yf.pow(2).sum().item<double>();
        }
        return quantized_output_ ? yq : y;
    }
    std::string describe() const override { return "calibration probe"; }

    mutable double err2 = 0, ref2 = 0;
    mutable at::Tensor absmax;

private:
    at::Tensor w_, b_;
    activation_quant low_;
    bool measure_, quantized_output_, record_;
};

// Puts probes on the linears for the duration of a scan and restores the previous runtimes.
class probe_scope {
public:
    explicit probe_scope(llama_model &m) : model_(m) {
        for (auto *l : m.linears()) saved_.push_back(l->runtime);
    }
    ~probe_scope() {
        auto ls = model_.linears();
        for (size_t i = 0; i < ls.size(); ++i) ls[i]->runtime = saved_[i];
    }

private:
    llama_model &model_;
    std::vector<std::shared_ptr<const linear_runtime>> saved_;
};

// Runs the model over the windows in batches; `each` gets (first window, logits fp32 [B, T, V]).
template <class F>
void for_batches(const llama_model &model, const at::Tensor &tokens, int64_t batch, F &&each) {
    for (int64_t s = 0; s < tokens.size(0); s += batch) {
        const int64_t b = std::min(batch, tokens.size(0) - s);
        each(s, model.forward(tokens.narrow(0, s, b)));
    }
}

std::string module_of(const std::string &name) { return name.substr(name.rfind('.') + 1); }
int64_t layer_of(const std::string &name) {
    // "layers.<i>.<block>.<module>"
    const size_t a = name.find('.') + 1, b = name.find('.', a);
    return std::stoll(name.substr(a, b - a));
}

} // namespace

std::map<std::string, at::Tensor> activation_channel_absmax(llama_model &model, const at::Tensor &tokens, int64_t batch) {
    c10::InferenceMode guard;
    probe_scope scope(model);
    std::vector<std::shared_ptr<probe_runtime>> probes;
    for (auto *l : model.linears()) {
        probes.push_back(std::make_shared<probe_runtime>(*l, activation_quant{}, false, false, true));
        l->runtime = probes.back();
    }
    for_batches(model, tokens, batch, [](int64_t, const at::Tensor &) {});
    std::map<std::string, at::Tensor> out;
    auto ls = model.linears();
    for (size_t i = 0; i < ls.size(); ++i) out[ls[i]->name] = probes[i]->absmax;
    return out;
}

sensitivity_metric sensitivity_metric_from_name(const std::string &name) {
    if (name == "layer_error") return sensitivity_metric::layer_error;
    if (name == "kl") return sensitivity_metric::kl;
    fail("unknown sensitivity metric '{}' (expected layer_error or kl)", name);
}

const char *sensitivity_metric_name(sensitivity_metric m) { return m == sensitivity_metric::kl ? "kl" : "layer_error"; }

std::vector<layer_sensitivity> sensitivity_scan(llama_model &model, const at::Tensor &tokens, const activation_quant &low,
                                                sensitivity_metric metric, int64_t batch) {
    c10::InferenceMode guard;
    probe_scope scope(model);
    auto ls = model.linears();
    std::vector<layer_sensitivity> out(ls.size());
    // Pass 1, all layers at once: each probe measures its own layer's output error from its
    // full-precision input and passes the full-precision output on, so layers do not interact.
    std::vector<std::shared_ptr<probe_runtime>> probes;
    for (auto *l : ls) {
        probes.push_back(std::make_shared<probe_runtime>(*l, low, true, false, false));
        l->runtime = probes.back();
    }
    for_batches(model, tokens, batch, [](int64_t, const at::Tensor &) {});
    for (size_t i = 0; i < ls.size(); ++i) {
        out[i].name = ls[i]->name;
        out[i].module = module_of(ls[i]->name);
        out[i].layer = layer_of(ls[i]->name);
        out[i].rel_error = probes[i]->ref2 > 0 ? std::sqrt(probes[i]->err2 / probes[i]->ref2) : 0.0;
        out[i].kl = std::nan("");
        out[i].score = out[i].rel_error;
    }
    if (metric == sensitivity_metric::kl) {
        // Pass 2, one forward per layer with only that layer's input quantized, against the
        // full-precision log-probabilities (kept for all windows: windows * seq_len * vocab fp32).
        for (auto *l : ls) l->runtime = nullptr;
        std::vector<at::Tensor> ref;
        for_batches(model, tokens, batch, [&](int64_t, const at::Tensor &logits) { ref.push_back(at::log_softmax(logits, -1)); });
        const double positions = double(tokens.numel());
        for (size_t i = 0; i < ls.size(); ++i) {
            ls[i]->runtime = std::make_shared<probe_runtime>(*ls[i], low, false, true, false);
            double kl_sum = 0;
            size_t bi = 0;
            for_batches(model, tokens, batch, [&](int64_t, const at::Tensor &logits) {
                const auto &p_ref = ref[bi++];
                auto lq = at::log_softmax(logits, -1);
                kl_sum += (p_ref.exp() * (p_ref - lq)).sum().item<double>();
            });
            ls[i]->runtime = nullptr;
            out[i].kl = kl_sum / positions;
            out[i].score = out[i].kl;
        }
    }
    return out;
}

std::vector<std::string> select_sensitive(std::vector<layer_sensitivity> &scores, double threshold, int64_t budget) {
    std::vector<size_t> pass;
    for (size_t i = 0; i < scores.size(); ++i) {
        scores[i].chosen = false;
        if (threshold <= 0 || scores[i].score > threshold) pass.push_back(i);
    }
    // Highest score first; ties keep model order so the choice is deterministic.
    std::stable_sort(pass.begin(), pass.end(), [&](size_t a, size_t b) { return scores[a].score > scores[b].score; });
    if (budget >= 0 && int64_t(pass.size()) > budget) pass.resize(size_t(budget));
    for (size_t i : pass) scores[i].chosen = true;
    std::vector<std::string> names;
    for (const auto &s : scores)
        if (s.chosen) names.push_back(s.name);
    return names;
}

std::vector<std::string> write_sensitivity_report(const fs::path &dir, const std::vector<layer_sensitivity> &scores, const json &settings) {
    fs::create_directories(dir);
    json layers = json::array();
    std::string csv = "layer,name,module,rel_error,kl,score,a8\n";
    auto num = [](double v) { return std::isfinite(v) ? json(v) : json(nullptr); };
    for (const auto &s : scores) {
        layers.push_back({{"name", s.name}, {"layer", s.layer}, {"module", s.module}, {"rel_error", num(s.rel_error)}, {"kl", num(s.kl)},
                          {"score", num(s.score)}, {"a8", s.chosen}});
        csv += fmt::format("{},{},{},{:.9g},{},{:.9g},{}\n", s.layer, s.name, s.module, s.rel_error,
                           std::isfinite(s.kl) ? fmt::format("{:.9g}", s.kl) : std::string(), s.score, s.chosen ? 1 : 0);
    }
    json doc = settings;
    doc["layers"] = layers;
    std::ofstream(dir / "sensitivity.json") << doc.dump(2) << "\n";
    std::ofstream(dir / "sensitivity.csv") << csv;

    // The plot: score by decoder layer, one series per module type, the threshold as a line and
    // the chosen (A8) layers as filled markers.
    std::vector<plot_series> series;
    for (const char *m : {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}) {
        plot_series ps;
        ps.label = m;
        for (const auto &s : scores)
            if (s.module == m) ps.points.push_back({double(s.layer), s.score, s.chosen});
        if (!ps.points.empty()) series.push_back(std::move(ps));
    }
    plot_options po;
    po.title = fmt::format("A{} sensitivity ({}) by layer", settings.value("a_bits", 6), settings.value("metric", std::string("score")));
    po.x_label = "decoder layer";
    po.y_label = settings.value("metric", std::string("score"));
    po.log_y = true;
    const double th = settings.value("threshold", 0.0);
    if (th > 0) po.hline = th;
    write_scatter_png(dir / "sensitivity.png", series, po);
    return {"sensitivity.json", "sensitivity.csv", "sensitivity.png"};
}

} // namespace qb
