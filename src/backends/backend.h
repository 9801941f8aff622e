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
#include <span>
#include <string>

namespace qb {

class backend {
public:
    virtual ~backend() = default;
    virtual status supports(const linear_layer &layer, at::Device device, at::ScalarType dtype) const = 0;
    virtual std::shared_ptr<const linear_runtime> bind(const linear_layer &layer, at::ScalarType dtype) const = 0;
    // Kernels that write the activation codes this back-end's runtimes take (llama_model::producer),
    // or null when its runtimes take fp16 input only.
    virtual std::shared_ptr<const activation_producer> producer() const { return nullptr; }
    // One runtime for several linears that read the same input, computing their outputs side by side
    // ([..., N1 + N2 + ...], parts in order) in one GEMM: q, k, v or gate, up. Each output element is
    // the part's own dot product and epilogue, only the kernel's choices for the wider shape (split
    // of K, algorithm) may order its fp32 sums differently. Null with `why_not` set where this
    // back-end cannot (the default: it binds one layer at a time).
    virtual std::shared_ptr<const linear_runtime> bind_fused(std::span<const linear_layer *const> parts, at::ScalarType dtype,
                                                             std::string &why_not) const;
};

// The parts as one linear layer: weights, quantized weights and biases concatenated along the output
// (on the parts' device), the common activation quantization, `name`. Empty `why_not` when they can
// be: the same input features, device, dtype, weight format and activation quantization, a bias on
// all or none.
linear_layer concatenated_linear(std::span<const linear_layer *const> parts, const std::string &name, std::string &why_not);

// Binds each layer's q_proj, k_proj, v_proj (and gate_proj, up_proj) as one GEMM where `be` can
// (decoder_layer::qkv, gate_up), and sets each part's runtime to a view of that GEMM's output; the
// caller binds the linears left without a runtime. Returns what was fused, or why not, for the run
// record.
std::string fuse_projections(llama_model &model, const backend &be);

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
