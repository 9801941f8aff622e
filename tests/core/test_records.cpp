// Run records: folder layout, manifest contents and status transitions, metrics, resume lookup.
#include "core/experiment.h"
#include "core/log.h"
#include "core/run_record.h"
#include "test_util.h"
#include "toy_catalog.h"

#include <doctest/doctest.h>

#include <fstream>
#include <regex>

using namespace qb;
namespace fs = std::filesystem;

namespace {
experiment toy_experiment(const test::scratch_dir &dir, const std::string &extra = "") {
    return experiment_load(dir.write("exp.yaml", "name: toy\nmodel: {format: synthetic, config: tiny}\nevaluations: [kl_divergence]\n" + extra),
                           test::toy_catalog());
}
json read_json(const fs::path &p) {
    std::ifstream in(p);
    return json::parse(in);
}
struct quiet_log {
    quiet_log() { log_set_quiet(true); }
    ~quiet_log() { log_set_quiet(false); }
};
} // namespace

TEST_SUITE("records") {

TEST_CASE("a run folder is results/<experiment>/<UTC>_<hash8> with a complete manifest") {
    quiet_log quiet;
    test::scratch_dir dir;
    auto exp = toy_experiment(dir);
    const auto &cell = exp.cells.at(0);
    fs::path run_dir;
    {
        run_record rec(dir.path() / "results", exp, cell, {"qbench", "run", "exp.yaml"});
        run_dir = rec.dir();
        CHECK(run_dir.parent_path() == dir.path() / "results" / "toy");
        CHECK(std::regex_match(run_dir.filename().string(), std::regex(R"(\d{8}T\d{6}Z_[0-9a-f]{8})")));
        CHECK(run_dir.filename().string().substr(17) == cell.config_hash().substr(0, 8));

        // While running, the manifest already exists and says so.
        auto m = read_json(run_dir / "manifest.json");
        CHECK(m["status"] == "running");
        CHECK(m["error"].is_null());

        rec.add_metric({{"evaluation", "kl_divergence"}, {"metric", "kld_mean"}, {"value", 0.25}});
        rec.add_metric({{"evaluation", "kl_divergence"}, {"metric", "top1_agree"}, {"value", 0.5}});
        rec.add_dataset("wikitext2", {{"sha256", "abc"}, {"path", "x"}});
        rec.add_input("weights", {{"sha256", "def"}});
        log_info("hello from the run");
        rec.finish_ok();
    }
    auto m = read_json(run_dir / "manifest.json");
    CHECK(m["schema_version"] == manifest_schema_version);
    CHECK(m["run_id"] == run_dir.filename().string());
    CHECK(m["experiment"] == "toy");
    CHECK(m["status"] == "ok");
    CHECK(m["config_hash"] == cell.config_hash());
    CHECK(m["config"] == cell.to_json());
    CHECK(m["seeds"]["global"] == 0);
    CHECK(m["datasets"]["wikitext2"]["sha256"] == "abc");
    CHECK(m["inputs"]["weights"]["sha256"] == "def");
    CHECK(m["argv"] == json::array({"qbench", "run", "exp.yaml"}));
    CHECK(m["n_metrics"] == 2);
    CHECK(m["finished"].is_string());
    CHECK(m["duration_s"].is_number());
    for (const char *key : {"git", "build", "versions", "host", "gpu", "started"}) CHECK_MESSAGE(m.contains(key), key);
    CHECK(m["git"].contains("commit"));
    CHECK(m["git"].contains("dirty"));
    CHECK(m["build"].contains("cxx"));
    CHECK(m["versions"]["qbench"].is_string());
    CHECK(m["host"]["cores"].get<int>() > 0);

    auto run = read_run(run_dir);
    REQUIRE(run.metrics.size() == 2);
    CHECK(run.metrics[0]["metric"] == "kld_mean");
    CHECK(run.metrics[0]["config_hash"] == cell.config_hash());
    CHECK(run.metrics[1]["run_id"] == m["run_id"]);

    std::ifstream log(run_dir / "log.txt");
    std::string text((std::istreambuf_iterator<char>(log)), {});
    CHECK(text.find("hello from the run") != std::string::npos);
}

TEST_CASE("a failed run keeps its manifest with the error; an abandoned one says interrupted") {
    quiet_log quiet;
    test::scratch_dir dir;
    auto exp = toy_experiment(dir);
    fs::path failed, abandoned;
    {
        run_record rec(dir.path(), exp, exp.cells[0], {});
        rec.add_metric({{"evaluation", "e"}, {"metric", "m"}, {"value", 1}});
        rec.finish_failed("model load failed: weights not found");
        failed = rec.dir();
    }
    {
        run_record rec(dir.path(), exp, exp.cells[0], {});
        abandoned = rec.dir();
    } // destroyed without finishing, as when an exception unwinds past it
    CHECK(failed != abandoned);
    auto f = read_json(failed / "manifest.json");
    CHECK(f["status"] == "failed");
    CHECK(f["error"] == "model load failed: weights not found");
    CHECK(read_run(failed).metrics.size() == 1); // what was measured before the failure is kept
    auto a = read_json(abandoned / "manifest.json");
    CHECK(a["status"] == "failed");
    CHECK(a["error"].get<std::string>().find("interrupted") != std::string::npos);
    CHECK_FALSE(find_completed_run(dir.path() / "toy", exp.cells[0].config_hash()).has_value());
}

TEST_CASE("resume: only an ok record of the same config hash counts as done") {
    quiet_log quiet;
    test::scratch_dir dir;
    auto exp = toy_experiment(dir, "seed: [0, 1]\n");
    const auto &a = exp.cells.at(0), &b = exp.cells.at(1);
    const fs::path exp_dir = dir.path() / "toy";
    CHECK_FALSE(find_completed_run(exp_dir, a.config_hash()).has_value());
    fs::path ok_dir;
    {
        run_record rec(dir.path(), exp, a, {});
        rec.finish_ok();
        ok_dir = rec.dir();
    }
    {
        run_record rec(dir.path(), exp, b, {});
        rec.finish_skipped("not supported [x]: k must be a multiple of 128");
    }
    auto found = find_completed_run(exp_dir, a.config_hash());
    REQUIRE(found.has_value());
    CHECK(*found == ok_dir);
    CHECK_FALSE(find_completed_run(exp_dir, b.config_hash()).has_value()); // skipped is not completed
    // A damaged manifest is not a completed run.
    std::ofstream(ok_dir / "manifest.json") << "{ not json";
    CHECK_FALSE(find_completed_run(exp_dir, a.config_hash()).has_value());
}

TEST_CASE("read_run reports the file and line of a damaged metrics row") {
    test::scratch_dir dir;
    dir.write("run/manifest.json", R"({"status": "ok"})");
    dir.write("run/metrics.jsonl", "{\"value\": 1}\n{oops\n");
    CHECK_THROWS_WITH_AS(read_run(dir.path() / "run"), doctest::Contains("metrics.jsonl:2: invalid JSON"), error);
}

TEST_CASE("write_file_atomic replaces the whole file and leaves no temporary") {
    test::scratch_dir dir;
    auto p = dir.path() / "m.json";
    write_file_atomic(p, "first version, longer");
    write_file_atomic(p, "second");
    std::ifstream in(p);
    std::string text((std::istreambuf_iterator<char>(in)), {});
    CHECK(text == "second");
    CHECK_FALSE(fs::exists(dir.path() / "m.json.tmp"));
}

} // TEST_SUITE
