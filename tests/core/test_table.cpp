// Tables from recorded runs: identity columns, metrics with stderr, reference join and delta,
// and the four printers.
#include "core/error.h"
#include "core/table.h"
#include "test_util.h"

#include <doctest/doctest.h>

using namespace qb;

namespace {

recorded_run fake_run(const std::string &hash, const std::string &started, const std::string &quantizer, int bits, double ppl,
                      const std::string &status = "ok") {
    recorded_run r;
    r.dir = "/runs/" + hash;
    json quant = {{"name", quantizer}};
    if (bits) quant["w_bits"] = bits;
    r.manifest = {{"status", status},
                  {"config_hash", hash},
                  {"run_id", started + "_" + hash.substr(0, 8)},
                  {"experiment", "ppl"},
                  {"started", started},
                  {"finished", started},
                  {"git", {{"commit", "0123456789abcdef0123"}, {"dirty", false}}},
                  {"host", {{"cpu", "Test CPU"}}},
                  {"gpu", nullptr},
                  {"datasets", {{"wikitext2", {{"sha256", "feedfacecafe0000"}}}}},
                  {"config",
                   {{"model", {{"format", "synthetic"}, {"name", "llama-2-7b"}}},
                    {"device", "cpu"},
                    {"quantizer", quant},
                    {"evaluations", json::array({{{"name", "perplexity"}, {"seq_len", 2048}}})}}}};
    r.metrics = {{{"evaluation", "perplexity"}, {"metric", "ppl"}, {"value", ppl}, {"stderr", 0.01}},
                 {{"evaluation", "perplexity"}, {"metric", "tokens"}, {"value", 1000}}};
    return r;
}

std::vector<recorded_run> three_runs() {
    return {fake_run("aaaaaaaa11", "2026-01-01T00:00:00Z", "none", 0, 5.47),
            fake_run("bbbbbbbb22", "2026-01-01T00:00:01Z", "rtn", 6, 5.53),
            fake_run("cccccccc33", "2026-01-01T00:00:02Z", "rtn", 4, 6.10)};
}

} // namespace

TEST_SUITE("table") {

TEST_CASE("identity columns are the fields that differ; metrics show value ± stderr") {
    auto t = build_table(three_runs(), {});
    CHECK(t.header == std::vector<std::string>{"model.name", "quantizer.name", "quantizer.w_bits", "perplexity.ppl",
                                               "perplexity.tokens", "config"});
    REQUIRE(t.cells.size() == 3);
    CHECK(t.cells[1] == std::vector<std::string>{"llama-2-7b", "rtn", "6", "5.530 ± 0.010", "1000", "bbbbbbbb"});
    CHECK(t.cells[0][2] == ""); // the fp16 row has no w_bits
    CHECK(t.notes.at(0) == "runs: 3 completed, experiment ppl");
    CHECK(t.notes.at(1) == "git: 0123456789ab");
    CHECK(t.notes.at(2) == "device: CPU: Test CPU");
    CHECK(t.notes.at(3) == "datasets: wikitext2 sha256:feedfacecafe");
}

TEST_CASE("only the newest ok record per config hash is shown") {
    auto runs = three_runs();
    runs.push_back(fake_run("bbbbbbbb22", "2026-01-02T00:00:00Z", "rtn", 6, 5.50));                   // newer re-run
    runs.push_back(fake_run("cccccccc33", "2026-01-03T00:00:00Z", "rtn", 4, 9.99, "failed"));         // failed: ignored
    runs.push_back(fake_run("dddddddd44", "2026-01-03T00:00:00Z", "rtn", 3, 9.99, "skipped"));        // skipped: ignored
    auto t = build_table(runs, {});
    REQUIRE(t.cells.size() == 3);
    CHECK(t.cells[1][3] == "5.500 ± 0.010");
    CHECK(t.cells[2][3] == "6.100 ± 0.010");
}

TEST_CASE("runs of several experiments: the footer names each") {
    auto runs = three_runs();
    runs[2].manifest["experiment"] = "ppl-base";
    auto t = build_table(runs, {});
    CHECK(t.notes.at(0) == "runs: 3 completed, experiments ppl; ppl-base");
}

TEST_CASE("no completed runs is an error, not an empty table") {
    CHECK_THROWS_WITH_AS(build_table({fake_run("x1234567", "t", "rtn", 4, 1, "failed")}, {}), doctest::Contains("no completed runs"),
                         error);
}

TEST_CASE("reference: a wide CSV melted and joined, with the delta") {
    test::scratch_dir dir;
    auto csv = dir.write("ref.csv", R"(# the paper's table
dataset,method,llama-7b,llama-2-7b
wikitext2,FP16,5.68,5.47
wikitext2,RTN-W6,5.75,5.55
c4,FP16,7.08,6.97
"wikitext2","RTN-W4",6.5,
)");
    auto wide = reference_read_csv(csv);
    CHECK(wide.header.size() == 4);
    CHECK(wide.rows.size() == 4);
    auto long_form = reference_melt(wide, "model", {"dataset", "method"});
    CHECK(long_form.header == std::vector<std::string>{"dataset", "method", "model", "value"});
    CHECK(long_form.rows.size() == 7); // the blank cell is dropped

    // Our quantizer names are not the paper's method names: join on a field that is.
    auto runs = three_runs();
    runs[0].manifest["config"]["quantizer"]["label"] = "FP16";
    runs[1].manifest["config"]["quantizer"]["label"] = "RTN-W6";
    runs[2].manifest["config"]["quantizer"]["label"] = "RTN-W4";
    table_options opt;
    opt.reference = long_form;
    opt.join = {"dataset==wikitext2", "method=quantizer.label", "model=model.name"};
    opt.metric = "perplexity.ppl";
    opt.columns = {"model.name", "quantizer.label"};
    auto t = build_table(runs, opt);
    CHECK(t.header == std::vector<std::string>{"model.name", "quantizer.label", "perplexity.ppl", "perplexity.tokens",
                                               "reference", "delta", "config"});
    CHECK(t.cells[0][4] == "5.47");
    CHECK(t.cells[0][5] == "+0");
    CHECK(t.cells[1][4] == "5.55");
    CHECK(t.cells[1][5] == "-0.02");
    CHECK(t.cells[2][4] == ""); // no reference number for this row
    CHECK(t.cells[2][5] == "");
    CHECK(t.values[1][t.values[1].size() - 8].get<double>() == doctest::Approx(-0.02)); // machine view: delta before provenance
}

TEST_CASE("reference errors name the column, the file and the choices") {
    reference_table ref;
    ref.source = "ref.csv";
    ref.header = {"method", "value"};
    ref.rows = {{"FP16", "1"}};
    table_options opt;
    opt.reference = ref;
    opt.metric = "perplexity.ppl";
    opt.join = {"methd=quantizer.name"};
    CHECK_THROWS_WITH_AS(build_table(three_runs(), opt), doctest::Contains("reference table ref.csv has no column 'methd'. Did you mean: method?"), error);
    opt.join = {"method=quantizer.name"};
    opt.metric = "perplexity.pll";
    CHECK_THROWS_WITH_AS(build_table(three_runs(), opt), doctest::Contains("metric 'perplexity.pll' is not in these runs. Did you mean: perplexity.ppl?"), error);
    test::scratch_dir dir;
    CHECK_THROWS_WITH_AS(reference_read_csv(dir.write("bad.csv", "a,b\n1,2,3\n")), doctest::Contains("bad.csv:2: expected 2 fields"), error);
}

TEST_CASE("printers: markdown, CSV, LaTeX, JSON from the same table") {
    auto t = build_table(three_runs(), {});
    auto md = render_markdown(t);
    CHECK(md.find("| model.name | quantizer.name | quantizer.w_bits | perplexity.ppl | perplexity.tokens | config   |") == 0);
    CHECK(md.find("| llama-2-7b | rtn            | 4                | 6.100 ± 0.010  | 1000              | cccccccc |") != std::string::npos);
    CHECK(md.find("- git: 0123456789ab") != std::string::npos);

    auto csv = render_csv(t);
    auto first_line = csv.substr(0, csv.find('\n'));
    CHECK(first_line == "model.name,quantizer.name,quantizer.w_bits,perplexity.ppl,perplexity.ppl.stderr,perplexity.tokens,"
                        "config_hash,run_id,experiment,git_commit,git_dirty,device,finished");
    CHECK(csv.find("llama-2-7b,rtn,6,5.53,0.01,1000,bbbbbbbb22,2026-01-01T00:00:01Z_bbbbbbbb,ppl,0123456789abcdef0123,false,CPU: Test CPU,") !=
          std::string::npos);

    auto tex = render_latex(t);
    CHECK(tex.find("\\begin{tabular}{llllll}") != std::string::npos);
    CHECK(tex.find("model.name & quantizer.name & quantizer.w\\_bits") != std::string::npos);
    CHECK(tex.find("6.100 $\\pm$ 0.010") != std::string::npos);

    auto j = json::parse(render_json(t));
    CHECK(j["rows"].size() == 3);
    CHECK(j["rows"][2]["perplexity.ppl"] == doctest::Approx(6.10));
    CHECK(j["rows"][2]["perplexity.ppl.stderr"] == doctest::Approx(0.01));
    CHECK(j["rows"][2]["git_commit"] == "0123456789abcdef0123");
}

TEST_CASE("CSV cells with commas and quotes are quoted") {
    auto runs = three_runs();
    runs[0].manifest["config"]["model"]["name"] = "a,\"b\"";
    auto csv = render_csv(build_table(runs, {}));
    CHECK(csv.find("\"a,\"\"b\"\"\",none") != std::string::npos);
}

} // TEST_SUITE
