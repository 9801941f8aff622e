// SHA-256 against FIPS 180-4 vectors; config hashes: canonical, stable, sensitive to what matters.
#include "core/experiment.h"
#include "core/json.h"
#include "core/sha256.h"
#include "test_util.h"
#include "toy_catalog.h"

#include <doctest/doctest.h>

using namespace qb;

TEST_SUITE("hash") {

TEST_CASE("sha256: FIPS 180-4 test vectors") {
    CHECK(sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    CHECK(sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    CHECK(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
          "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    // One million 'a', fed in uneven pieces to exercise the block buffering.
    sha256 h;
    std::string chunk(997, 'a');
    size_t left = 1000000;
    while (left) {
        size_t n = std::min(left, chunk.size());
        h.update(chunk.data(), n);
        left -= n;
    }
    CHECK(h.hex_digest() == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256 of a file equals sha256 of its bytes") {
    test::scratch_dir dir;
    std::string text;
    for (int i = 0; i < 300000; ++i) text += char('a' + i % 26);
    auto p = dir.write("f.txt", text);
    CHECK(sha256_file_hex(p) == sha256_hex(text));
    CHECK_THROWS_WITH_AS(sha256_file_hex(dir.path() / "missing"), doctest::Contains("cannot read"), error);
}

TEST_CASE("canonical JSON: key order does not matter, numbers are shortest round-trip") {
    json a = json::parse(R"({"b": 1, "a": {"y": [1, 2], "x": 0.1}})");
    json b = json::parse(R"({"a": {"x": 0.1, "y": [1, 2]}, "b": 1})");
    CHECK(canonical_json(a) == canonical_json(b));
    CHECK(canonical_json(a) == R"({"a":{"x":0.1,"y":[1,2]},"b":1})");
    CHECK(json_hash(a) == json_hash(b));
    CHECK(json_hash(json{{"v", 1}}) != json_hash(json{{"v", 1.0}})); // an int and a float are different configs
}

TEST_CASE("config hash: stable across releases (golden value)") {
    // If this changes, every recorded run stops matching its configuration: change it only with
    // a manifest schema version bump and a note in docs/results-schema.md.
    test::scratch_dir dir;
    auto exp = experiment_load(dir.write("g.yaml", R"(model: {format: synthetic, config: tiny}
quantizer: {name: rtn, w_bits: 4, group_size: 128}
evaluations: [kl_divergence]
)"),
                               test::toy_catalog());
    const auto &cell = exp.cells.at(0);
    CHECK(canonical_json(cell.to_json()) ==
          R"({"backend":{"name":"torch_ref"},"device":"cpu","dtype":"fp32","evaluations":[{"name":"kl_divergence","seq_len":128,"sequences":4}],"model":{"config":"tiny","format":"synthetic","name":"tiny","seed":0},"quantizer":{"group_size":128,"name":"rtn","skip":[],"symmetric":true,"w_bits":4},"seed":0})");
    CHECK(cell.config_hash() == sha256_hex(canonical_json(cell.to_json())));
    CHECK(cell.config_hash() == "8510c068b30a131ecfad90f5725e076ea0c08db07841c28582486684f035a50e");
}

TEST_CASE("config hash: changes with any value that can change a number, not with formatting") {
    test::scratch_dir dir;
    auto hash_of = [&](const std::string &text) {
        return experiment_load(dir.write("h.yaml", text), test::toy_catalog()).cells.at(0).config_hash();
    };
    const std::string base = "model: {format: synthetic, config: tiny}\nevaluations: [kl_divergence]\n";
    const auto h0 = hash_of(base);
    CHECK(hash_of("# a comment\nevaluations:\n  - kl_divergence\nmodel:\n    config: tiny\n    format: synthetic\n") == h0);
    CHECK(hash_of(base + "seed: 0\n") == h0); // writing a default explicitly changes nothing
    CHECK(hash_of(base + "seed: 1\n") != h0);
    CHECK(hash_of(base + "dtype: fp16\n") != h0);
    CHECK(hash_of("model: {format: synthetic, config: tiny, seed: 1}\nevaluations: [kl_divergence]\n") != h0);
    CHECK(hash_of("model: {format: synthetic, config: tiny}\nevaluations: [{name: kl_divergence, seq_len: 64}]\n") != h0);
    // Presentation-only keys are not part of a cell's identity.
    CHECK(hash_of(base + "description: anything\nname: other\n") == h0);
}

} // TEST_SUITE
