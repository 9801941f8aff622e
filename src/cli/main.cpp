// qbench — run experiments, list what is registered, tabulate recorded results.
#include "config.h"
#include "core/config_tree.h"
#include "core/environment.h"
#include "core/error.h"
#include "core/experiment.h"
#include "core/run_record.h"
#include "core/table.h"
#include "harness/catalog.h"
#include "harness/runner.h"
#include "cli/generate_cmd.h"
#include "cli/quantize_cmd.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include <cstdlib>
#include <fstream>
#include <iostream>

namespace fs = std::filesystem;

namespace {

fs::path default_results_root() {
    if (const char *env = std::getenv("QBENCH_RESULTS_DIR"); env && *env) return env;
    return "results";
}

struct table_args {
    std::vector<std::string> inputs;
    std::string format = "md", output, reference, reference_value, reference_melt, metric;
    std::vector<std::string> join, columns;
    std::string results_dir;
};

// Runs from: an experiment file (its current cells), a run folder, or a folder of run folders.
std::vector<qb::recorded_run> gather_runs(const table_args &a, qb::table_options &opt) {
    std::vector<qb::recorded_run> runs;
    const fs::path results_root = a.results_dir.empty() ? default_results_root() : fs::path(a.results_dir);
    for (const auto &input : a.inputs) {
        fs::path p = input;
        if (p.extension() == ".yaml" || p.extension() == ".yml") {
            auto exp = qb::experiment_load(p, qb::registered_catalog());
            opt = qb::table_options_from(exp);
            auto dir = qb::experiment_results_dir(results_root, exp.name);
            size_t before = runs.size();
            for (auto &r : qb::runs_of_experiment(exp, results_root)) runs.push_back(std::move(r));
            if (runs.size() == before)
                qb::fail("no records of experiment '{}' in {} (run it first: qbench run {})", exp.name, dir.string(), p.string());
        } else if (fs::exists(p / "manifest.json")) {
            runs.push_back(qb::read_run(p));
        } else if (fs::is_directory(p)) {
            auto dirs = qb::list_run_dirs(p);
            if (dirs.empty()) qb::fail("{} holds no run folders (folders with a manifest.json)", p.string());
            for (const auto &d : dirs) runs.push_back(qb::read_run(d));
        } else {
            qb::fail("{}: not an experiment file, a run folder or a results folder", p.string());
        }
    }
    return runs;
}

int cmd_table(const table_args &a) {
    qb::table_options opt;
    auto runs = gather_runs(a, opt);
    // Command-line settings override what the experiment file declares.
    if (!a.columns.empty()) opt.columns = a.columns;
    if (!a.metric.empty()) opt.metric = a.metric;
    if (!a.join.empty()) opt.join = a.join;
    if (!a.reference_value.empty()) opt.reference_value = a.reference_value;
    if (!a.reference.empty()) {
        auto csv = qb::reference_read_csv(a.reference);
        if (!a.reference_melt.empty()) {
            std::vector<std::string> keep;
            for (const auto &j : opt.join) keep.push_back(j.substr(0, j.find('=')));
            csv = qb::reference_melt(csv, a.reference_melt, keep, opt.reference_value);
        }
        opt.reference = std::move(csv);
    }
    auto table = qb::build_table(runs, opt);
    std::string text = a.format == "csv"   ? qb::render_csv(table)
                       : a.format == "latex" ? qb::render_latex(table)
                       : a.format == "json"  ? qb::render_json(table)
                                             : qb::render_markdown(table);
    if (a.output.empty()) {
        std::cout << text;
    } else {
        qb::write_file_atomic(a.output, text);
        std::cerr << "wrote " << a.output << "\n";
    }
    return 0;
}

} // namespace

int main(int argc, char **argv) {
    CLI::App app{"qbench: reproducible benchmarks for low-bit LLM quantization"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string(QBENCH_VERSION) + " (" + qb::git_state_of(qb::source_dir()).build_describe + ")");

    qb::run_options run;
    auto *run_cmd = app.add_subcommand("run", "run an experiment file; cells already recorded are skipped");
    std::string experiment_file, results_dir;
    run_cmd->add_option("experiment", experiment_file, "experiment YAML file")->required()->check(CLI::ExistingFile);
    run_cmd->add_flag("--force", run.force, "re-run cells that already have a completed record");
    run_cmd->add_flag("--dry-run", run.dry_run, "print the resolved cells and their config hashes; run nothing");
    run_cmd->add_option("--results-dir", results_dir, "where run records go (default: $QBENCH_RESULTS_DIR or ./results)");
    run_cmd->add_option("--data-dir", run.data_dir, "datasets and models (default: $QBENCH_DATA_DIR or <source>/../shared)");

    std::string list_kind;
    auto *list_cmd = app.add_subcommand("list", "what is registered: models, quantizers, backends, evaluations, with options");
    list_cmd->add_option("kind", list_kind, "one registry only")->check(CLI::IsMember({"models", "quantizers", "backends", "evaluations"}));

    table_args targs;
    auto *table_cmd = app.add_subcommand("table", "tables from recorded runs (markdown, CSV, LaTeX, JSON)");
    table_cmd->add_option("inputs", targs.inputs, "experiment files, run folders, or results/<experiment> folders")->required();
    table_cmd->add_option("--format", targs.format, "md | csv | latex | json")->check(CLI::IsMember({"md", "csv", "latex", "json"}));
    table_cmd->add_option("-o,--output", targs.output, "write to a file instead of stdout");
    table_cmd->add_option("--reference", targs.reference, "CSV of reference numbers to show beside ours")->check(CLI::ExistingFile);
    table_cmd->add_option("--reference-value", targs.reference_value, "reference column holding the number (default: value)");
    table_cmd->add_option("--reference-melt", targs.reference_melt, "wide reference CSV: its extra columns are values of this field");
    table_cmd->add_option("--join", targs.join, "refcol=field (match) or refcol==literal (filter); repeatable");
    table_cmd->add_option("--metric", targs.metric, "our metric compared with the reference (evaluation.metric)");
    table_cmd->add_option("--columns", targs.columns, "identity columns to show (default: those that differ)")->delimiter(',');
    table_cmd->add_option("--results-dir", targs.results_dir, "where run records are (for experiment-file inputs)");

    const auto quantize_cmd = qb::cli::add_quantize_command(app); // src/cli/quantize_cmd.cpp
    qb::cli::generate_args gargs;
    auto *generate_cmd = qb::cli::add_generate_command(app, gargs); // src/cli/generate_cmd.cpp

    CLI11_PARSE(app, argc, argv);

    try {
        if (*run_cmd) {
            run.experiment_file = experiment_file;
            run.results_root = results_dir.empty() ? default_results_root() : fs::path(results_dir);
            run.argv.assign(argv, argv + argc);
            auto summary = qb::run_experiment(run);
            return summary.failed > 0 ? 1 : 0;
        }
        if (*list_cmd) {
            std::cout << qb::describe_registries(qb::registered_catalog(), list_kind);
            return 0;
        }
        if (*table_cmd) return cmd_table(targs);
        if (quantize_cmd->parsed()) return quantize_cmd->run();
        if (*generate_cmd) return qb::cli::run_generate(gargs);
    } catch (const qb::config_error &e) {
        std::cerr << "error: " << e.what() << "\n";
        return 2;
    } catch (const std::exception &e) {
        std::cerr << "error: " << e.what() << "\n";
        return 1;
    }
    return 0;
}
