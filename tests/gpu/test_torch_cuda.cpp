// GPU suite: the LibTorch side on CUDA — the model agrees with its CPU self, and an experiment
// runs end to end on the GPU with the GPU recorded in its manifest.
#include "core/log.h"
#include "core/run_record.h"
#include "harness/runner.h"
#include "model/llama.h"
#include "test_models.h"
#include "test_util.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <c10/core/InferenceMode.h>
#include <doctest/doctest.h>

using namespace qb;

TEST_SUITE("gpu") {

TEST_CASE("LibTorch sees CUDA (libtorch_cuda linked and registered)") {
    REQUIRE(at::globalContext().hasCUDA());
}

TEST_CASE("synthetic model: CUDA fp32 logits match CPU fp32") {
    c10::InferenceMode guard;
    at::globalContext().setAllowTF32CuBLAS(false); // compare fp32 with fp32, not TF32
    const llama_config c = test::llama_config_of(256, 768, 4, 4, 2, 1024);
    auto cpu = llama_make_synthetic(c, 3, at::kFloat, at::kCPU);
    auto gpu = llama_make_synthetic(c, 3, at::kFloat, at::Device(at::kCUDA));
    CHECK(at::equal(cpu.layers[2].up_proj.weight, gpu.layers[2].up_proj.weight.cpu())); // same seed, same weights
    auto gen = at::make_generator<at::CPUGeneratorImpl>(1);
    auto tokens = at::randint(1024, {2, 64}, gen, at::TensorOptions().dtype(at::kLong));
    auto a = cpu.forward(tokens);
    auto b = gpu.forward(tokens.cuda()).cpu();
    // Same fp32 math in a different summation order: logits of scale ~3 agree to ~1e-5 relative.
    const double diff = (a - b).abs().max().item<double>();
    MESSAGE("max |cpu - cuda| logits = " << diff);
    CHECK(diff < 1e-3);
}

TEST_CASE("qbench run on cuda: completes, records the GPU") {
    log_set_quiet(true);
    test::scratch_dir dir;
    run_options o;
    o.experiment_file = dir.write("gpu.yaml", R"(name: gpu
model: {format: synthetic, config: tiny-llama}
device: cuda
dtype: [fp32, fp16]
quantizer: [none, {name: rtn, w_bits: 4, group_size: 128}]
evaluations:
  - {name: kl_divergence, sequences: 2, seq_len: 64}
  - {name: latency, seq_len: 128, repeats: 5}
)");
    o.results_root = dir.path() / "results";
    auto s = run_experiment(o);
    log_set_quiet(false);
    CHECK(s.completed == 4);
    CHECK(s.failed == 0);
    for (const auto &d : list_run_dirs(o.results_root / "gpu")) {
        auto r = read_run(d);
        CHECK(r.manifest["status"] == "ok");
        REQUIRE(r.manifest["gpu"].is_object());
        CHECK(r.manifest["gpu"]["sm_count"].get<int>() > 0);
        CHECK_FALSE(r.manifest["gpu"]["name"].get<std::string>().empty());
    }
}

} // TEST_SUITE
