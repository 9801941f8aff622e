// Experiment parsing: the happy path, include merging, and every error path with its location.
#include "core/config_tree.h"
#include "core/experiment.h"
#include "test_util.h"
#include "toy_catalog.h"

#include <doctest/doctest.h>

using namespace qb;

namespace {

const char *minimal = R"(model: {format: synthetic, config: tiny}
evaluations: [kl_divergence]
)";

experiment parse_text(const test::scratch_dir &dir, const std::string &text, const std::string &name = "exp.yaml") {
    auto file = dir.write(name, text);
    return experiment_load(file, test::toy_catalog());
}

// Parses `text` expecting a config_error; returns its message.
std::string error_of(const std::string &text, const std::string &name = "exp.yaml") {
    test::scratch_dir dir;
    try {
        parse_text(dir, text, name);
    } catch (const config_error &e) {
        // Locations are reported against the file as given: strip the scratch folder.
        std::string msg = e.what();
        auto pos = msg.find(dir.path().string() + "/");
        while (pos != std::string::npos) {
            msg.erase(pos, dir.path().string().size() + 1);
            pos = msg.find(dir.path().string() + "/");
        }
        return msg;
    }
    FAIL("expected a config_error for:\n" << text);
    return "";
}

} // namespace

TEST_SUITE("config") {

TEST_CASE("minimal experiment: defaults filled, name from the file") {
    test::scratch_dir dir;
    auto exp = parse_text(dir, minimal, "my_exp.yaml");
    CHECK(exp.name == "my_exp");
    REQUIRE(exp.cells.size() == 1);
    const auto &c = exp.cells[0];
    CHECK(c.device == "cpu");
    CHECK(c.dtype == "fp32");
    CHECK(c.seed == 0);
    CHECK(c.quantizer.name == "none");
    CHECK(c.backend.name == "torch_ref");
    CHECK(c.model.name == "synthetic");
    CHECK(c.model.options["config"] == "tiny");
    CHECK(c.model.options["name"] == "tiny"); // derived from config
    CHECK(c.model.options["seed"] == 0);
    REQUIRE(c.evaluations.size() == 1);
    CHECK(c.evaluations[0].name == "kl_divergence");
    CHECK(c.evaluations[0].options["sequences"] == 4);
    CHECK(c.evaluations[0].options["seq_len"] == 128);
}

TEST_CASE("typed values: int, float, bool, string list, quoted strings stay strings") {
    test::scratch_dir dir;
    auto exp = parse_text(dir, R"(model: {format: synthetic, config: "8"}
quantizer: {name: rtn, w_bits: 6, group_size: 128, symmetric: false, skip: [lm_head, "layers.0.*"]}
evaluations: [{name: latency, scale: 0.5}]
)");
    const auto &c = exp.cells.at(0);
    CHECK(c.model.options["config"] == "8");
    CHECK(c.quantizer.options["w_bits"] == 6);
    CHECK(c.quantizer.options["symmetric"] == false);
    CHECK(c.quantizer.options["skip"] == json::array({"lm_head", "layers.0.*"}));
    CHECK(c.evaluations[0].options["scale"] == doctest::Approx(0.5));
}

TEST_CASE("include: base first, this file overrides, mappings merge key by key") {
    test::scratch_dir dir;
    dir.write("base/common.yaml", R"(model: {format: synthetic, config: tiny, seed: 3}
device: cpu
quantizer: {name: rtn, w_bits: 4}
evaluations: [kl_divergence]
)");
    dir.write("base/more.yaml", "include: common.yaml\ndtype: bf16\n");
    auto exp = parse_text(dir, R"(include: [base/more.yaml]
model: {config: other}
quantizer: {w_bits: 6}
)");
    const auto &c = exp.cells.at(0);
    CHECK(c.model.options["config"] == "other"); // overridden
    CHECK(c.model.options["seed"] == 3);         // merged from the base
    CHECK(c.dtype == "bf16");                    // from the nested include
    CHECK(c.quantizer.name == "rtn");
    CHECK(c.quantizer.options["w_bits"] == 6);
}

TEST_CASE("include: a config and its inlined equivalent have the same hash") {
    test::scratch_dir dir;
    dir.write("base.yaml", "model: {format: synthetic, config: tiny}\nseed: 5\n");
    auto a = parse_text(dir, "include: base.yaml\nevaluations: [kl_divergence]\n", "a.yaml");
    auto b = parse_text(dir, "evaluations:\n  - name: kl_divergence\n    seq_len: 128\nseed: 5\nmodel:\n  config: tiny\n  format: synthetic\n", "b.yaml");
    CHECK(a.cells.at(0).config_hash() == b.cells.at(0).config_hash());
}

TEST_CASE("error: unknown top-level key, with location and suggestion") {
    auto msg = error_of(std::string(minimal) + "quantiser: rtn\n");
    CHECK(msg.find("exp.yaml:3:1: quantiser: unknown key. Did you mean: quantizer?") == 0);
}

TEST_CASE("error: unknown option key of a component names the dotted path") {
    auto msg = error_of(R"(model: {format: synthetic, config: tiny}
quantizer:
  name: rtn
  w_bitz: 4
evaluations: [kl_divergence]
)");
    CHECK(msg.find("exp.yaml:4:3: quantizer.w_bitz: unknown key. Did you mean: w_bits?") == 0);
    CHECK(msg.find("Available: group_size, skip, symmetric, w_bits") != std::string::npos);
}

TEST_CASE("error: option of a component that takes none") {
    auto msg = error_of(std::string(minimal) + "backend: {name: torch_ref, tile: 64}\n");
    CHECK(msg.find("exp.yaml:3:28: backend.tile: unknown key. This component takes no options.") == 0);
}

TEST_CASE("error: wrong type names the expected type and range") {
    auto quoted = error_of(R"(model: {format: synthetic, config: tiny}
quantizer: {name: rtn, w_bits: "8"}
evaluations: [kl_divergence]
)");
    CHECK(quoted.find("exp.yaml:2:32: quantizer.w_bits: expected an integer in [2, 8], got \"8\"") == 0);
    auto junk = error_of(R"(model: {format: synthetic, config: tiny}
quantizer: {name: rtn, group_size: 12S}
evaluations: [kl_divergence]
)");
    CHECK(junk.find("exp.yaml:2:36: quantizer.group_size: expected an integer in [0, 4096], got 12S") == 0);
    auto boolean = error_of(R"(model: {format: synthetic, config: tiny}
quantizer: {name: rtn, symmetric: 1}
evaluations: [kl_divergence]
)");
    CHECK(boolean.find("quantizer.symmetric: expected a boolean (true or false), got 1") != std::string::npos);
    auto mapping = error_of(R"(model: {format: synthetic, config: {a: 1}}
evaluations: [kl_divergence]
)");
    CHECK(mapping.find("exp.yaml:1:36: model.config: expected a string, got a mapping") == 0);
    auto list_of_mappings = error_of(R"(model: {format: synthetic, config: tiny}
quantizer: {name: rtn, skip: [{a: 1}]}
evaluations: [kl_divergence]
)");
    CHECK(list_of_mappings.find("quantizer.skip[0]: expected a string, got a mapping") != std::string::npos);
}

TEST_CASE("error: out of range") {
    auto msg = error_of(R"(model: {format: synthetic, config: tiny}
quantizer: {name: rtn, w_bits: 12}
evaluations: [{name: latency, scale: 2.5}]
)");
    CHECK(msg.find("exp.yaml:2:32: quantizer.w_bits: expected an integer in [2, 8], got 12") == 0);
    auto number = error_of(R"(model: {format: synthetic, config: tiny}
evaluations: [{name: latency, scale: 2.5}]
)");
    CHECK(number.find("exp.yaml:2:38: evaluations[0].scale: expected a number in [0, 2], got 2.5") == 0);
    auto top = error_of(std::string(minimal) + "seed: -1\n");
    CHECK(top.find("exp.yaml:3:7: seed: expected an integer in [0, ") == 0);
}

TEST_CASE("error: unknown choice value suggests the nearest") {
    auto msg = error_of(std::string(minimal) + "device: cdua\n");
    CHECK(msg.find("exp.yaml:3:9: device: unknown value 'cdua'. Did you mean: cuda? Available: cpu, cuda") == 0);
}

TEST_CASE("error: unknown component name suggests registered ones") {
    auto msg = error_of(std::string(minimal) + "quantizer: rnt\n");
    CHECK(msg.find("exp.yaml:3:12: quantizer: unknown quantizer 'rnt'. Did you mean: rtn? Available: none, rtn") == 0);
    auto in_map = error_of(std::string(minimal) + "backend: {name: w8a8}\n");
    CHECK(in_map.find("exp.yaml:3:17: backend.name: unknown backend 'w8a8'. Did you mean: cublaslt_w8a8?") == 0);
    auto eval = error_of("model: {format: synthetic, config: tiny}\nevaluations: [perplexty]\n");
    CHECK(eval.find("exp.yaml:2:15: evaluations[0]: unknown evaluation 'perplexty'.") == 0);
}

TEST_CASE("error: missing required keys and options") {
    CHECK(error_of("evaluations: [kl_divergence]\n").find("exp.yaml:1:1: model: missing required key") == 0);
    CHECK(error_of("model: {format: synthetic, config: tiny}\n").find("evaluations: missing required key") != std::string::npos);
    auto opt = error_of("model: {format: synthetic}\nevaluations: [kl_divergence]\n");
    CHECK(opt.find("exp.yaml:1:8: model.config: missing required option (a string; architecture)") == 0);
    auto no_name = error_of(std::string(minimal) + "quantizer: {w_bits: 4}\n");
    CHECK(no_name.find("exp.yaml:3:12: quantizer.name: missing required key (the quantizer; one of: none, rtn)") == 0);
}

TEST_CASE("error: shapes of blocks") {
    CHECK(error_of("- a\n- b\n").find("exp.yaml:1:1: expected a mapping at the top level, got a list") == 0);
    CHECK(error_of(std::string(minimal) + "quantizer: {name: rtn, w_bits: []}\n").find("quantizer.w_bits: an empty list gives the sweep no values") != std::string::npos);
    CHECK(error_of(std::string(minimal) + "quantizer: {name: rtn, w_bits: [4, 4]}\n").find("exp.yaml:3:36: quantizer.w_bits[1]: duplicate sweep value 4") == 0);
    CHECK(error_of(std::string(minimal) + "quantizer: [rtn, {name: rtn, w_bits: 8}]\n").find("quantizer[1]: duplicate sweep entry") != std::string::npos);
    CHECK(error_of("model: {format: synthetic, config: tiny}\nevaluations: []\n").find("evaluations: the list is empty") != std::string::npos);
    CHECK(error_of(std::string(minimal) + "name: a/b\n").find("exp.yaml:3:7: name: expected a name of letters") == 0);
}

TEST_CASE("error: YAML syntax and duplicate keys carry the location") {
    auto syntax = error_of("model: {format: synthetic, config: tiny\nevaluations: [kl_divergence]\n");
    CHECK(syntax.find("exp.yaml:") == 0);
    CHECK(syntax.find("YAML syntax error") != std::string::npos);
    auto dup = error_of(std::string(minimal) + "seed: 1\nseed: 2\n");
    CHECK(dup.find("exp.yaml:4:1: seed: duplicate key") == 0);
}

TEST_CASE("error: include problems point at the include line") {
    auto missing = error_of(std::string("include: nothere.yaml\n") + minimal);
    CHECK(missing.find("exp.yaml:1:10: include: cannot open") == 0);
    CHECK(missing.find("nothere.yaml") != std::string::npos);

    test::scratch_dir dir;
    dir.write("a.yaml", "include: b.yaml\n");
    dir.write("b.yaml", "include: a.yaml\n");
    try {
        experiment_load(dir.path() / "a.yaml", test::toy_catalog());
        FAIL("include cycle not detected");
    } catch (const config_error &e) {
        CHECK(std::string(e.what()).find("include cycle") != std::string::npos);
        CHECK(e.mark.line == 1);
    }
    auto bad = error_of(std::string("include: {a: 1}\n") + minimal);
    CHECK(bad.find("exp.yaml:1:10: include: expected a file path or a list of file paths") == 0);
}

TEST_CASE("error: a location inside an included file names that file") {
    test::scratch_dir dir;
    dir.write("base.yaml", "model: {format: synthetic, config: tiny}\nquantizer: {name: rtn, w_bits: 9}\n");
    auto file = dir.write("exp.yaml", "include: base.yaml\nevaluations: [kl_divergence]\n");
    try {
        experiment_load(file, test::toy_catalog());
        FAIL("expected an error");
    } catch (const config_error &e) {
        CHECK(*e.mark.file == (dir.path() / "base.yaml").string());
        CHECK(e.mark.line == 2);
        CHECK(e.key_path == "quantizer.w_bits");
    }
}

TEST_CASE("error: table block") {
    auto unknown = error_of(std::string(minimal) + "table: {refrence: x.csv}\n");
    CHECK(unknown.find("exp.yaml:3:9: table.refrence: unknown key. Did you mean: reference?") == 0);
    auto no_metric = error_of(std::string(minimal) + "table: {reference: x.csv}\n");
    CHECK(no_metric.find("table.metric: a reference table needs the metric") != std::string::npos);
}

} // TEST_SUITE
