// Kernel back-ends: bind each (possibly quantized) decoder linear to the code that executes it.
// supports() answers, before anything runs, why a layer cannot run here; the harness records
// that as a skip with the reason instead of crashing.
#pragma once
#include "core/json.h"
#include "core/registry.h"
#include "core/status.h"
#include "model/llama.h"

#include <functional>
#include <memory>

namespace qb {

class backend {
public:
    virtual ~backend() = default;
    virtual status supports(const linear_layer &layer, at::Device device, at::ScalarType dtype) const = 0;
    virtual std::shared_ptr<const linear_runtime> bind(const linear_layer &layer, at::ScalarType dtype) const = 0;
    // Kernels that write the activation codes this back-end's runtimes take (llama_model::producer),
    // or null when its runtimes take fp16 input only.
    virtual std::shared_ptr<const activation_producer> producer() const { return nullptr; }
};

struct backend_entry {
    component_info info;
    std::function<std::unique_ptr<backend>(const json &options)> create;
};

const registry<backend_entry> &backends();

// Factories of the registered back-ends (one file each).
std::unique_ptr<backend> make_torch_ref_backend(const json &options);
// CUDA kernel back-ends (gpu_backends.cpp; only with QBENCH_HAVE_CUDA).
std::unique_ptr<backend> make_fp16_backend(const json &options);
std::unique_ptr<backend> make_cublaslt_w8a8_backend(const json &options);
std::unique_ptr<backend> make_cublas_w8a8_legacy_backend(const json &options);
std::unique_ptr<backend> make_w6_imma_backend(const json &options);
std::unique_ptr<backend> make_flexq_btc_backend(const json &options);
std::unique_ptr<backend> make_w6ax_backend(const json &options);

} // namespace qb
