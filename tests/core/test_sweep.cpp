// Sweep expansion: cartesian products, alternatives, ordering for one model load per group.
#include "core/experiment.h"
#include "test_util.h"
#include "toy_catalog.h"

#include <doctest/doctest.h>

#include <set>

using namespace qb;

namespace {
experiment parse(const std::string &text) {
    test::scratch_dir dir;
    return experiment_load(dir.write("sweep.yaml", text), test::toy_catalog());
}
} // namespace

TEST_SUITE("sweep") {

TEST_CASE("lists in options are cartesian axes; first option varies slowest") {
    auto exp = parse(R"(model: {format: synthetic, config: tiny}
quantizer: {name: rtn, w_bits: [8, 4], group_size: [0, 64, 128]}
evaluations: [kl_divergence]
)");
    REQUIRE(exp.cells.size() == 6);
    std::vector<std::pair<int, int>> got;
    for (const auto &c : exp.cells) got.emplace_back(c.quantizer.options["w_bits"], c.quantizer.options["group_size"]);
    CHECK(got == std::vector<std::pair<int, int>>{{8, 0}, {8, 64}, {8, 128}, {4, 0}, {4, 64}, {4, 128}});
}

TEST_CASE("a list of components is a set of alternatives, each expanded") {
    auto exp = parse(R"(model: {format: synthetic, config: tiny}
quantizer: [none, {name: rtn, w_bits: [8, 6, 4]}]
backend: [torch_ref, {name: cublaslt_w8a8, epilogue: [fused, none]}]
evaluations: [kl_divergence]
)");
    CHECK(exp.cells.size() == 4 * 3);
    std::set<std::string> hashes;
    for (const auto &c : exp.cells) hashes.insert(c.config_hash());
    CHECK(hashes.size() == exp.cells.size()); // every cell is a distinct configuration
}

TEST_CASE("string-list options sweep only on a list of lists") {
    auto one = parse(R"(model: {format: synthetic, config: tiny}
quantizer: {name: rtn, skip: [a, b]}
evaluations: [kl_divergence]
)");
    CHECK(one.cells.size() == 1);
    auto two = parse(R"(model: {format: synthetic, config: tiny}
quantizer: {name: rtn, skip: [[a], [a, b]]}
evaluations: [kl_divergence]
)");
    REQUIRE(two.cells.size() == 2);
    CHECK(two.cells[1].quantizer.options["skip"] == json::array({"a", "b"}));
}

TEST_CASE("evaluation options sweep too; each evaluation entry adds one choice per cell") {
    auto exp = parse(R"(model: {format: synthetic, config: tiny}
evaluations:
  - {name: kl_divergence, seq_len: [64, 128]}
  - {name: latency, repeats: [1, 2, 3]}
)");
    REQUIRE(exp.cells.size() == 6);
    for (const auto &c : exp.cells) {
        REQUIRE(c.evaluations.size() == 2);
        CHECK(c.evaluations[0].name == "kl_divergence");
        CHECK(c.evaluations[1].name == "latency");
    }
}

TEST_CASE("model-major order: cells sharing a model (and device, dtype) are contiguous") {
    auto exp = parse(R"(model:
  - {format: synthetic, config: a}
  - {format: synthetic, config: b}
device: [cpu, cuda]
dtype: [fp32, fp16]
seed: [0, 1]
quantizer: [none, {name: rtn, w_bits: [8, 4]}]
evaluations: [kl_divergence]
)");
    REQUIRE(exp.cells.size() == 2 * 2 * 2 * 2 * 3);
    // Count how often the model key changes while walking the cells: once per group.
    int loads = 0;
    std::string last;
    std::set<std::string> seen;
    for (const auto &c : exp.cells) {
        if (c.model_key() != last) {
            ++loads;
            CHECK(seen.insert(c.model_key()).second); // a group never comes back later
            last = c.model_key();
        }
    }
    CHECK(loads == 2 * 2 * 2);
    CHECK(exp.cells.front().model.options["config"] == "a");
    CHECK(exp.cells.back().model.options["config"] == "b");
}

TEST_CASE("seed sweep values are distinct cells with distinct hashes") {
    auto exp = parse(std::string("model: {format: synthetic, config: tiny}\nevaluations: [kl_divergence]\nseed: [0, 1, 2]\n"));
    REQUIRE(exp.cells.size() == 3);
    CHECK(exp.cells[0].config_hash() != exp.cells[1].config_hash());
    CHECK(exp.cells[2].seed == 2);
}

} // TEST_SUITE
