// End to end through `qbench run` on the synthetic toy LLaMA: records, resume, skips, failures,
// and that the numbers mean what they say.
#include "core/log.h"
#include "core/run_record.h"
#include "core/table.h"
#include "harness/catalog.h"
#include "harness/runner.h"
#include "test_util.h"

#include <doctest/doctest.h>

#include <fstream>

using namespace qb;
namespace fs = std::filesystem;

namespace {

const char *experiment_text = R"(name: e2e
model: {format: synthetic, config: tiny-llama}
quantizer: [none, {name: rtn, w_bits: [8, 3]}]
evaluations:
  - {name: kl_divergence, sequences: 2, seq_len: 32}
  - {name: latency, seq_len: 16, warmup: 1, repeats: 2}
)";

struct quiet_log {
    quiet_log() { log_set_quiet(true); }
    ~quiet_log() { log_set_quiet(false); }
};

run_options options_for(const test::scratch_dir &dir, const fs::path &file) {
    run_options o;
    o.experiment_file = file;
    o.results_root = dir.path() / "results";
    o.argv = {"qbench", "run", file.string()};
    return o;
}

double metric_of(const recorded_run &r, const std::string &name) {
    for (const auto &m : r.metrics)
        if (m["metric"] == name) return m["value"].get<double>();
    FAIL("metric " << name << " missing");
    return 0;
}

} // namespace

TEST_SUITE("e2e") {

TEST_CASE("run, then resume: completed cells are skipped, --force re-runs them") {
    quiet_log quiet;
    test::scratch_dir dir;
    auto file = dir.write("e2e.yaml", experiment_text);
    auto opt = options_for(dir, file);

    auto first = run_experiment(opt);
    CHECK(first.completed == 3);
    CHECK(first.failed == 0);
    auto runs = list_run_dirs(opt.results_root / "e2e");
    REQUIRE(runs.size() == 3);

    auto second = run_experiment(opt);
    CHECK(second.completed == 0);
    CHECK(second.skipped_done == 3);
    CHECK(list_run_dirs(opt.results_root / "e2e").size() == 3);

    opt.force = true;
    auto third = run_experiment(opt);
    CHECK(third.completed == 3);
    CHECK(list_run_dirs(opt.results_root / "e2e").size() == 6);

    // Adding a cell to the sweep runs only the new one.
    opt.force = false;
    std::string more = experiment_text;
    more.replace(more.find("[8, 3]"), 6, "[8, 3, 4]");
    dir.write("e2e.yaml", more);
    auto fourth = run_experiment(opt);
    CHECK(fourth.completed == 1);
    CHECK(fourth.skipped_done == 3);
}

TEST_CASE("manifest and metrics of a real run") {
    quiet_log quiet;
    test::scratch_dir dir;
    auto opt = options_for(dir, dir.write("e2e.yaml", experiment_text));
    run_experiment(opt);
    std::vector<recorded_run> runs;
    for (const auto &d : list_run_dirs(opt.results_root / "e2e")) runs.push_back(read_run(d));
    REQUIRE(runs.size() == 3);
    for (const auto &r : runs) {
        const auto &m = r.manifest;
        CHECK(m["status"] == "ok");
        CHECK(m["config"]["model"]["config"] == "tiny-llama");
        CHECK(m["inputs"]["model_config"]["config"]["dim"] == 256);
        CHECK(m["quantization"]["method"].is_string());
        CHECK(m["versions"]["libtorch"].get<std::string>().rfind("2.", 0) == 0);
        CHECK(m["argv"].size() == 3);
        CHECK(r.metrics.size() == 6); // kld_mean, kld_p99, kld_max, top1_agree, prefill_ms, prefill_tokens_per_s
    }
    // Sanity of the metric itself: the unquantized model has zero divergence from its base,
    // 8-bit weights move it a little, 3-bit weights a lot.
    std::map<std::string, const recorded_run *> by;
    for (const auto &r : runs) {
        const auto &q = r.manifest["config"]["quantizer"];
        by[q["name"].get<std::string>() + (q.contains("w_bits") ? std::to_string(q["w_bits"].get<int>()) : "")] = &r;
    }
    CHECK(metric_of(*by["none"], "kld_mean") == 0.0);
    CHECK(metric_of(*by["none"], "top1_agree") == 1.0);
    const double k8 = metric_of(*by["rtn8"], "kld_mean"), k3 = metric_of(*by["rtn3"], "kld_mean");
    CHECK(k8 > 0.0);
    CHECK(k3 > 20 * k8);
    CHECK(by["rtn3"]->manifest["quantization"]["bits_per_weight"].get<double>() == doctest::Approx(3.0).epsilon(0.05));
    CHECK(metric_of(*by["rtn8"], "prefill_ms") > 0.0);

    // The table of the experiment lists the cells in experiment order.
    auto table = build_table(runs_of_experiment(experiment_load(opt.experiment_file, registered_catalog()), opt.results_root), {});
    REQUIRE(table.cells.size() == 3);
    CHECK(table.cells[0][1] == "none");
}

TEST_CASE("a cell a component cannot do is recorded as skipped with the reason") {
    quiet_log quiet;
    test::scratch_dir dir;
    auto opt = options_for(dir, dir.write("skip.yaml", R"(name: skip
model: {format: synthetic, config: tiny-llama}
quantizer: {name: rtn, group_size: 96}
evaluations: [{name: kl_divergence, sequences: 1, seq_len: 8}]
)"));
    auto s = run_experiment(opt);
    CHECK(s.skipped_unsupported == 1);
    CHECK(s.failed == 0);
    auto r = read_run(list_run_dirs(opt.results_root / "skip").at(0));
    CHECK(r.manifest["status"] == "skipped");
    CHECK(r.manifest["error"].get<std::string>().find("not supported [rtn]: rtn: layers.0.self_attn.q_proj has K=256, not a multiple of group_size=96") == 0);
}

TEST_CASE("a failing cell keeps a failed manifest and the run reports it") {
    quiet_log quiet;
    test::scratch_dir dir;
    auto opt = options_for(dir, dir.write("fail.yaml", R"(name: fail
model: [{format: synthetic, config: no-such-model}, {format: synthetic, config: tiny-llama}]
evaluations: [{name: kl_divergence, sequences: 1, seq_len: 8}]
)"));
    auto s = run_experiment(opt);
    CHECK(s.failed == 1);
    CHECK(s.completed == 1); // the next model group still runs
    int failed = 0;
    for (const auto &d : list_run_dirs(opt.results_root / "fail")) {
        auto r = read_run(d);
        if (r.manifest["status"] == "failed") {
            ++failed;
            auto err = r.manifest["error"].get<std::string>();
            CHECK(err.find("model load failed: unknown model config 'no-such-model'") == 0);
            CHECK(err.find("Available:") != std::string::npos);
        }
    }
    CHECK(failed == 1);

    // An evaluation that fails midway keeps the rows it wrote before failing.
    auto opt2 = options_for(dir, dir.write("fail2.yaml", R"(name: fail2
model: {format: synthetic, config: tiny-llama}
evaluations:
  - {name: latency, seq_len: 8, warmup: 0, repeats: 1}
  - {name: kl_divergence, sequences: 1, seq_len: 100000}
)"));
    auto s2 = run_experiment(opt2);
    CHECK(s2.failed == 1);
    auto r = read_run(list_run_dirs(opt2.results_root / "fail2").at(0));
    CHECK(r.manifest["status"] == "failed");
    CHECK(r.manifest["error"].get<std::string>().find("seq_len 100000 exceeds the model's max_seq_len 512") != std::string::npos);
    CHECK(r.metrics.size() == 2); // the latency rows survive
}

// A tiny-llama latency experiment on the CPU whose one evaluation sweeps `sweep` (two values): two
// cells, one run and one skipped; returns the decode rows of the run and the skipped manifest.
struct latency_pair {
    std::vector<json> decode_rows;
    std::string skipped_manifest;
};
latency_pair run_latency_pair(const std::string &sweep) {
    quiet_log quiet;
    test::scratch_dir dir;
    auto opt = options_for(dir, dir.write("lat.yaml", "name: lat\nmodel: {format: synthetic, config: tiny-llama}\nevaluations:\n"
                                                      "  - {name: latency, seq_len: 8, new_tokens: 3, warmup: 0, repeats: 1, " +
                                                          sweep + "}\n"));
    auto s = run_experiment(opt);
    CHECK(s.completed == 1);
    CHECK(s.skipped_unsupported == 1);
    CHECK(s.failed == 0);
    latency_pair out;
    int seen = 0;
    for (const auto &d : list_run_dirs(opt.results_root / "lat")) {
        auto r = read_run(d);
        ++seen;
        if (r.manifest["status"] == "ok") {
            for (const auto &m : r.metrics)
                if (m["metric"] == "decode_ms_per_token") out.decode_rows.push_back(m);
        } else {
            CHECK(r.manifest["status"] == "skipped");
            out.skipped_manifest = r.manifest.dump();
        }
    }
    CHECK(seen == 2);
    return out;
}

TEST_CASE("latency decode: auto runs eagerly on the CPU and says so; graph is skipped there with the reason") {
    const auto r = run_latency_pair("decode: [auto, graph]");
    REQUIRE(r.decode_rows.size() == 1);
    CHECK(r.decode_rows[0]["decode"].get<std::string>().rfind("eager", 0) == 0);
    CHECK(r.decode_rows[0]["value"].get<double>() > 0);
    CHECK(r.skipped_manifest.find("decode: graph needs a CUDA model") != std::string::npos);
}

TEST_CASE("latency step_kernels: fused is skipped on the CPU with the reason; the decode row says what ran") {
    const auto r = run_latency_pair("step_kernels: [auto, fused]");
    REQUIRE(r.decode_rows.size() == 1);
    CHECK(r.decode_rows[0]["step_kernels"].get<std::string>().rfind("aten: forward()", 0) == 0); // eager on the CPU
    CHECK(r.skipped_manifest.find("step_kernels: fused are the decode graph's") != std::string::npos);
}

TEST_CASE("qbench list is generated from the registries") {
    auto text = describe_registries(registered_catalog(), "");
    for (const char *s : {"models", "synthetic", "quantizers", "rtn", "w_bits", "[2, 8]", "backends", "torch_ref", "evaluations",
                          "kl_divergence", "latency", "repeats"})
        CHECK_MESSAGE(text.find(s) != std::string::npos, s);
    CHECK_THROWS_WITH(describe_registries(registered_catalog(), "quantizer"), doctest::Contains("Did you mean: quantizers?"));
}

} // TEST_SUITE
