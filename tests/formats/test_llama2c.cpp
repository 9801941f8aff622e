// llama2.c checkpoints: files written here (every array's position checked by its values),
// every size error, the real stories260K.bin against values read with numpy, and
// scripts/convert_llama2c_to_hf.py read back through the safetensors reader.
#include "format_test_util.h"
#include "formats/gguf.h"
#include "formats/llama2c.h"
#include "formats/safetensors.h"
#include "test_util.h"

#include <doctest/doctest.h>

#include <fmt/format.h>

#include <cstdlib>

using namespace qb;
namespace fs = std::filesystem;

namespace {

struct tiny_dims {
    int32_t dim = 8, hidden = 12, layers = 2, heads = 2, kv_heads = 1, vocab = 5, seq = 4;
};

// Header, then float k = k-th float of the file after the header, so every value names its
// own position: a tensor at the wrong offset reads the wrong numbers.
std::string tiny_checkpoint(const tiny_dims &t, bool shared, int64_t extra_floats = 0, int64_t missing_floats = 0) {
    std::string out;
    for (int32_t v : {t.dim, t.hidden, t.layers, t.heads, t.kv_heads, shared ? t.vocab : -t.vocab, t.seq}) test::put<int32_t>(out, v);
    const int64_t kv = t.dim / t.heads * t.kv_heads, hd = t.dim / t.heads;
    int64_t n = int64_t{t.vocab} * t.dim + t.layers * (2 * t.dim + 2 * t.dim * t.dim + 2 * kv * t.dim + 3 * t.hidden * t.dim) + t.dim +
                2 * t.seq * hd / 2 + (shared ? 0 : int64_t{t.vocab} * t.dim);
    n += extra_floats - missing_floats;
    for (int64_t k = 0; k < n; ++k) test::put<float>(out, static_cast<float>(k));
    return out;
}

void check_positions(const tensor_view &t, int64_t first) {
    INFO("tensor " << t.name);
    const auto v = tensor_read_f32(t);
    CHECK(v.front() == static_cast<float>(first));
    CHECK(v.back() == static_cast<float>(first + t.numel() - 1));
}

} // namespace

TEST_SUITE("formats") {

TEST_CASE("formats/llama2c/layout: every array at its offset, HF names, shared and unshared classifier") {
    test::scratch_dir dir;
    const tiny_dims t;
    for (bool shared : {true, false}) {
        INFO("shared classifier: " << shared);
        llama2c_checkpoint c(dir.write("m.bin", tiny_checkpoint(t, shared)));
        const auto &h = c.header();
        CHECK(h.dim == 8);
        CHECK(h.hidden_dim == 12);
        CHECK(h.n_layers == 2);
        CHECK(h.n_heads == 2);
        CHECK(h.n_kv_heads == 1);
        CHECK(h.vocab_size == 5);
        CHECK(h.seq_len == 4);
        CHECK(h.shared_classifier == shared);
        CHECK(h.head_dim() == 4);
        CHECK(h.kv_dim() == 4);
        CHECK(c.tensors().size() == (shared ? 20u : 21u)); // embed + 9 per layer + norm (+ lm_head)

        // Offsets in floats, following the order of run.c's memory_map_weights.
        const int64_t d = 8, f = 12, kv = 4, L = 2, V = 5;
        int64_t off = 0;
        check_positions(c.tensors().at("model.embed_tokens.weight"), off);
        CHECK(c.tensors().at("model.embed_tokens.weight").shape == std::vector<int64_t>{V, d});
        off += V * d;
        const std::vector<std::pair<std::string, std::vector<int64_t>>> per_layer = {
            {"input_layernorm", {d}},  {"self_attn.q_proj", {d, d}},          {"self_attn.k_proj", {kv, d}},
            {"self_attn.v_proj", {kv, d}}, {"self_attn.o_proj", {d, d}}, {"post_attention_layernorm", {d}},
            {"mlp.gate_proj", {f, d}}, {"mlp.down_proj", {d, f}},            {"mlp.up_proj", {f, d}}};
        for (const auto &[name, shape] : per_layer) {
            int64_t n = 1;
            for (int64_t s : shape) n *= s;
            for (int l = 0; l < L; ++l) {
                const auto &tv = c.tensors().at("model.layers." + std::to_string(l) + "." + name + ".weight");
                CHECK(tv.shape == shape);
                CHECK(tv.dtype == tensor_dtype::f32);
                check_positions(tv, off + l * n);
            }
            off += L * n;
        }
        check_positions(c.tensors().at("model.norm.weight"), off);
        off += d + 2 * 4 * 2; // norm, then freq_cis_real/imag [seq, head_dim/2] skipped
        if (shared) CHECK(c.tensors().find("lm_head.weight") == nullptr);
        else check_positions(c.tensors().at("lm_head.weight"), off);
    }
}

TEST_CASE("formats/llama2c/errors: size mismatches say what is missing or extra") {
    test::scratch_dir dir;
    const tiny_dims t;
    auto expect = [&](const std::string &bytes, const std::string &wanted) {
        test::expect_open_error<llama2c_checkpoint>(dir.path() / "bad.bin", bytes, wanted);
    };
    const std::string hdr = "(dim=8 hidden_dim=12 n_layers=2 n_heads=2 n_kv_heads=1 vocab_size=-5 seq_len=4)";
    const uint64_t full_unshared = tiny_checkpoint(t, false).size(); // 28 + 4 * 1004

    SUBCASE("too small") { expect("abc", "file is 3 bytes, too small for the 28-byte llama2.c header"); }
    SUBCASE("truncated inside the classifier") {
        expect(tiny_checkpoint(t, false, 0, 3), "file is " + std::to_string(full_unshared - 12) + " bytes, the header " + hdr + " needs " +
                                                    std::to_string(full_unshared) + ": 12 bytes missing, the file ends inside wcls");
    }
    SUBCASE("truncated inside the layers") {
        std::string b = tiny_checkpoint(t, true).substr(0, 28 + 4 * 100);
        expect(b, "bytes missing, the file ends inside wq (bytes [");
    }
    SUBCASE("extra bytes") {
        expect(tiny_checkpoint(t, false, 2),
               "file is " + std::to_string(full_unshared + 8) + " bytes, the header " + hdr + " accounts for " +
                   std::to_string(full_unshared) + ": 8 extra bytes after the last array (wcls)");
    }
    SUBCASE("a classifier the header says is shared") {
        std::string b = tiny_checkpoint(t, false);
        const int32_t v = 5; // flip vocab_size to positive: the trailing wcls is now extra
        std::memcpy(b.data() + 20, &v, 4);
        expect(b, "160 extra bytes after the last array (freq_cis_imag); that is exactly one [vocab, dim] classifier: was vocab_size "
                  "meant to be negative (unshared)?");
    }
    SUBCASE("a newer export version") {
        std::string b;
        test::put<uint32_t>(b, 0x616b3432);
        test::put<int32_t>(b, 2);
        b += std::string(40, '\0');
        expect(b, "a llama2.c version 2 export (magic \"ak42\"); qbench reads the legacy version 0 layout");
    }
    SUBCASE("inconsistent header") {
        tiny_dims bad = t;
        bad.heads = 3;
        expect(tiny_checkpoint(t, true).replace(12, 4, std::string(reinterpret_cast<const char *>(&bad.heads), 4)),
               "dim must split into n_heads heads of an even size");
        bad = t;
        bad.layers = 0;
        expect(tiny_checkpoint(bad, true), "has a zero or negative size: not a llama2.c checkpoint?");
    }
    SUBCASE("absurd header") {
        std::string b;
        for (int32_t v : {1 << 30, 1 << 30, 1 << 30, 1, 1, 1 << 30, 1}) test::put<int32_t>(b, v);
        expect(b, "bytes of weights: not a llama2.c checkpoint?");
    }
}

TEST_CASE("formats/llama2c/stories260k: the real checkpoint matches numpy's reading of the documented layout") {
    const auto path = test::data_dir() / "models" / "stories260K" / "stories260K.bin";
    if (!fs::exists(path)) {
        MESSAGE("skipped: " << path.string() << " not found (set QBENCH_DATA_DIR)");
        return;
    }
    const json ref = test::read_json_file(test::fixture_dir() / "stories260k.json");
    llama2c_checkpoint c(path);
    const auto &h = c.header();
    const auto &rh = ref["header"];
    CHECK(fs::file_size(path) == ref["file_size"].get<uint64_t>());
    CHECK(h.dim == rh["dim"].get<int64_t>());
    CHECK(h.hidden_dim == rh["hidden_dim"].get<int64_t>());
    CHECK(h.n_layers == rh["n_layers"].get<int64_t>());
    CHECK(h.n_heads == rh["n_heads"].get<int64_t>());
    CHECK(h.n_kv_heads == rh["n_kv_heads"].get<int64_t>());
    CHECK(h.vocab_size == rh["vocab_size"].get<int64_t>());
    CHECK(h.seq_len == rh["seq_len"].get<int64_t>());
    CHECK(h.shared_classifier == rh["shared_classifier"].get<bool>());
    // shared/models/README.md: dim 64, 5 layers, 8 heads, 4 kv heads, vocab 512, seq 512.
    CHECK(h.dim == 64);
    CHECK(h.n_layers == 5);
    CHECK(h.n_kv_heads == 4);
    CHECK(h.vocab_size == 512);
    CHECK(c.tensors().size() == ref["tensor_count"].get<size_t>());
    for (const auto &[name, s] : ref["samples"].items()) {
        INFO("tensor " << name);
        const auto &t = c.tensors().at(name);
        CHECK(t.shape == s["shape"].get<std::vector<int64_t>>());
        const auto v = tensor_read_f32(t);
        const auto index = s["index"].get<std::vector<size_t>>();
        const auto bits = s["bits"].get<std::vector<uint32_t>>();
        for (size_t k = 0; k < index.size(); ++k) CHECK(test::bits_of(v.at(index[k])) == bits[k]);
    }
}

TEST_CASE("formats/llama2c/convert_to_hf: scripts/convert_llama2c_to_hf.py output equals the reader's arrays, q/k unpermuted") {
    const auto model = test::data_dir() / "models" / "stories260K" / "stories260K.bin";
    const auto tok = test::data_dir() / "models" / "stories260K" / "tok512.bin";
    // The .venv's python (numpy is all the script needs): <venv>/lib/python3.x/site-packages/torch.
    const auto python = fs::path(QBENCH_TORCH_DIR).parent_path().parent_path().parent_path().parent_path() / "bin" / "python3";
    if (!fs::exists(model) || !fs::exists(python)) {
        MESSAGE("skipped: needs " << model.string() << " and " << python.string());
        return;
    }
    test::scratch_dir dir;
    const auto out = dir.path() / "hf";
    const std::string cmd = fmt::format("'{}' '{}' '{}' --tokenizer '{}' --out '{}' > '{}' 2>&1", python.string(),
                                        (source_dir() / "scripts" / "convert_llama2c_to_hf.py").string(), model.string(), tok.string(),
                                        out.string(), (dir.path() / "log.txt").string());
    const int rc = std::system(cmd.c_str());
    if (rc != 0 && test::read_bytes(dir.path() / "log.txt").find("No module named 'numpy'") != std::string::npos) {
        MESSAGE("skipped: numpy is not installed for " << python.string());
        return;
    }
    REQUIRE_MESSAGE(rc == 0, test::read_bytes(dir.path() / "log.txt"));

    llama2c_checkpoint c(model);
    const auto &h = c.header();
    const json cfg = hf_config_read(out);
    CHECK(cfg["hidden_size"] == h.dim);
    CHECK(cfg["intermediate_size"] == h.hidden_dim);
    CHECK(cfg["num_hidden_layers"] == h.n_layers);
    CHECK(cfg["num_attention_heads"] == h.n_heads);
    CHECK(cfg["num_key_value_heads"] == h.n_kv_heads);
    CHECK(cfg["vocab_size"] == h.vocab_size);
    CHECK(cfg["max_position_embeddings"] == h.seq_len);
    CHECK(cfg["tie_word_embeddings"] == h.shared_classifier);
    CHECK(cfg["rms_norm_eps"] == 1e-5);
    CHECK(cfg["rope_theta"] == 10000.0);

    safetensors_checkpoint hf(out);
    REQUIRE(hf.tensors().size() == c.tensors().size());
    size_t permuted = 0;
    for (const auto &t : c.tensors().all()) {
        INFO("tensor " << t.name);
        const auto &ht = hf.tensors().at(t.name);
        CHECK(ht.shape == t.shape);
        auto want = tensor_read_f32(t);
        const bool is_q = t.name.ends_with("q_proj.weight"), is_k = t.name.ends_with("k_proj.weight");
        if (is_q || is_k) {
            REQUIRE(gguf_unpermute_qk_rows(want, t.shape[0], t.shape[1], is_q ? h.n_heads : h.n_kv_heads));
            CHECK(want != tensor_read_f32(t)); // the reordering is not the identity here
            ++permuted;
        }
        CHECK(tensor_read_f32(ht) == want);
    }
    CHECK(permuted == 2 * static_cast<size_t>(h.n_layers));
}

} // TEST_SUITE
