#include "harness/runner.h"

#include "backends/backend.h"
#include "core/error.h"
#include "core/experiment.h"
#include "core/log.h"
#include "core/paths.h"
#include "core/run_record.h"
#include "core/table.h"
#include "core/text.h"
#include "eval/evaluation.h"
#include "harness/catalog.h"
#include "model/formats.h"
#include "quant/quantizer.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <ATen/Context.h>

#include <fmt/format.h>

#include <iostream>
#include <optional>

namespace qb {

namespace fs = std::filesystem;

namespace {

// "rtn(w_bits=4, group_size=128)" — a component in one line.
std::string component_text(const component_config &c) {
    std::vector<std::string> parts;
    for (const auto &[k, v] : c.options.items()) parts.push_back(k + "=" + (v.is_string() ? v.get<std::string>() : v.dump()));
    return parts.empty() ? c.name : c.name + "(" + join(parts, ", ") + ")";
}

std::string cell_text(const experiment_cell &c) {
    std::vector<std::string> evals;
    for (const auto &e : c.evaluations) evals.push_back(component_text(e));
    return fmt::format("model={} device={} dtype={} seed={} quantizer={} backend={} evaluations=[{}]", component_text(c.model),
                       c.device, c.dtype, c.seed, component_text(c.quantizer), component_text(c.backend), join(evals, "; "));
}

void print_resolved(const experiment &exp, const run_options &o, const data_dir_choice &data) {
    std::vector<std::pair<std::string, std::string>> rows = {
        {"experiment", exp.name},
        {"file", exp.file.string()},
        {"description", exp.description},
        {"cells", std::to_string(exp.cells.size())},
        {"results", (o.results_root / exp.name).string()},
        {"data dir", data.path.string() + " (" + data.origin + ")"},
        {"force", o.force ? "yes" : "no"},
    };
    size_t w = 0;
    for (const auto &r : rows) w = std::max(w, r.first.size());
    std::string out;
    for (const auto &[k, v] : rows) out += fmt::format("{:<{}}  {}\n", k, w, v);
    for (size_t i = 0; i < exp.cells.size(); ++i)
        out += fmt::format("  [{}] {}  {}\n", i + 1, exp.cells[i].config_hash().substr(0, 8), cell_text(exp.cells[i]));
    std::cout << out << std::flush;
}

// Why this cell cannot run on this machine at all, or "" when it can.
std::string environment_reason(const experiment_cell &cell) {
    if (cell.device == "cuda" && !at::globalContext().hasCUDA())
        return "device cuda requested but no CUDA device is available (this build or machine has none)";
    return "";
}

} // namespace

run_summary run_experiment(const run_options &o) {
    const component_catalog catalog = registered_catalog();
    const experiment exp = experiment_load(o.experiment_file, catalog);
    const data_dir_choice data = resolve_data_dir(o.data_dir, exp.data_dir, exp.file);
    print_resolved(exp, o, data);
    run_summary summary;
    if (o.dry_run) return summary;

    const fs::path exp_dir = experiment_results_dir(o.results_root, exp.name);
    std::optional<loaded_model> loaded;
    std::string loaded_key, load_error;

    for (size_t i = 0; i < exp.cells.size(); ++i) {
        const experiment_cell &cell = exp.cells[i];
        const std::string hash = cell.config_hash();
        const std::string tag = fmt::format("[{}/{}] {}", i + 1, exp.cells.size(), hash.substr(0, 8));
        if (!o.force) {
            if (auto done = find_completed_run(exp_dir, hash)) {
                log_info("{} already completed in {} (skipped; --force re-runs it)", tag, done->string());
                ++summary.skipped_done;
                continue;
            }
        }

        run_record record(o.results_root, exp, cell, o.argv);
        log_info("{} {}", tag, cell_text(cell));
        try {
            if (std::string why = environment_reason(cell); !why.empty()) {
                log_info("{} skipped: {}", tag, why);
                record.finish_skipped(why);
                ++summary.skipped_unsupported;
                continue;
            }
            if (cell.model_key() != loaded_key) {
                loaded.reset();
                loaded_key = cell.model_key();
                load_error.clear();
                try {
                    model_load_context ctx{config_dir(), data.path, at::Device(cell.device), dtype_from_name(cell.dtype)};
                    loaded = model_formats().get(cell.model.name).load(cell.model.options, ctx);
                } catch (const std::exception &e) {
                    load_error = e.what();
                }
            }
            if (!load_error.empty()) fail("model load failed: {}", load_error);
            for (const auto &[name, info] : loaded->inputs.items()) record.add_input(name, info);

            c10::InferenceMode inference_mode;
            // A shallow copy: tensors are shared with the loaded model, the linears are the copy's
            // own, so quantizing never touches the base (quantizers must not write in place).
            llama_model model = loaded->model;
            const auto q = quantizers().get(cell.quantizer.name).create(cell.quantizer.options);
            if (status st = q->supports(model); !st.ok()) {
                const std::string why = fmt::format("not supported [{}]: {}", cell.quantizer.name, st.reason);
                log_info("{} skipped: {}", tag, why);
                record.finish_skipped(why);
                ++summary.skipped_unsupported;
                continue;
            }
            // Calibrated methods read text through the model's tokenizer (random tokens without
            // one) and write their reports (flexq: sensitivity.*) into this run's folder.
            quantize_context qctx;
            qctx.tok = loaded->tok.get();
            qctx.data = data;
            qctx.run_dir = record.dir();
            qctx.add_dataset = [&record](const std::string &name, json info) { record.add_dataset(name, std::move(info)); };
            record.set_field("quantization", q->apply(model, qctx));

            const auto be = backends().get(cell.backend.name).create(cell.backend.options);
            std::string unsupported;
            for (const auto *layer : model.linears()) {
                status st = be->supports(*layer, model.device(), model.dtype());
                if (!st.ok()) {
                    unsupported = fmt::format("not supported [{}]: {} ({}): {}", cell.backend.name, layer->name,
                                              status_code_name(st.code), st.reason);
                    break;
                }
            }
            if (!unsupported.empty()) {
                log_info("{} skipped: {}", tag, unsupported);
                record.finish_skipped(unsupported);
                ++summary.skipped_unsupported;
                continue;
            }
            record.set_field("fused_projections", fuse_projections(model, *be));
            for (auto *layer : model.linears())
                if (!layer->runtime) layer->runtime = be->bind(*layer, model.dtype());
            model.producer = be->producer();
            if (model.producer) record.set_field("activation_producer", model.producer->describe());

            const fs::path cache_dir = o.results_root / ".cache";
            json skipped_evals = json::array();
            int ran = 0;
            for (const auto &e : cell.evaluations) {
                const auto ev = evaluations().get(e.name).create(e.options);
                eval_context ctx{loaded->model, model, loaded->tok.get(), loaded->identity, cell, e.options, record, data, cache_dir};
                if (status st = ev->supports(ctx); !st.ok()) {
                    log_info("{} evaluation {} skipped: {}", tag, e.name, st.reason);
                    skipped_evals.push_back({{"name", e.name}, {"reason", st.reason}});
                    continue;
                }
                ev->run(ctx);
                ++ran;
            }
            if (!skipped_evals.empty()) record.set_field("skipped_evaluations", skipped_evals);
            if (ran == 0) {
                record.finish_skipped(fmt::format("no evaluation can run on this model: {}", skipped_evals.dump()));
                ++summary.skipped_unsupported;
                continue;
            }
            record.finish_ok();
            ++summary.completed;
            log_info("{} ok -> {}", tag, record.dir().string());
        } catch (const std::exception &e) {
            record.finish_failed(e.what());
            ++summary.failed;
            log_info("{} FAILED: {} (record: {})", tag, e.what(), record.dir().string());
        }
    }

    log_info("{}: {} run, {} already done, {} skipped as unsupported, {} failed", exp.name, summary.completed,
             summary.skipped_done, summary.skipped_unsupported, summary.failed);

    // The table of this experiment's current cells (older configurations stay on disk).
    const std::vector<recorded_run> runs = runs_of_experiment(exp, o.results_root);
    bool any_ok = std::any_of(runs.begin(), runs.end(), [](const recorded_run &r) { return r.manifest.value("status", "") == "ok"; });
    if (any_ok) {
        const table_options topt = table_options_from(exp);
        std::cout << "\n" << render_markdown(build_table(runs, topt)) << std::flush;
    }
    return summary;
}

} // namespace qb
