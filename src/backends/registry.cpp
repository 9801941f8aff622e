// THE list of kernel back-ends: adding one = one entry here + one adapter file (+ its kernel in
// kernels/<name>/). CUDA-only entries go under QBENCH_HAVE_CUDA.
#include "backends/backend.h"

#include "config.h"

namespace qb {

namespace {

// Activation widths of the W6 back-ends: the default, and the layers that take 8 bits (the FlexQ
// paper's preset keeps mlp.down_proj at A8).
option_spec fuse_projections_option() {
    return {"fuse_projections", option_type::boolean, true,
            "q, k, v (and gate, up) of each layer as one GEMM, their outputs side by side: one launch and a wider grid per group; false: one GEMM "
            "per projection"};
}

std::vector<option_spec> w6_options() {
    return {
        fuse_projections_option(),
        {"a_bits", option_type::integer, 6, "activation bits of the layers not listed in a8_layers (6 or 8)", 6, 8},
        {"a8_layers", option_type::string, "mlp.down_proj", "comma-separated substrings of layer names that use 8-bit activations"},
        {"act_producer", option_type::boolean, true,
         "RMSNorm and SiLU x up write the int8 codes the next linears read (no quantizer kernel between layers; w6_imma and w6ax); "
         "false: each linear quantizes its own fp16 input"},
    };
}

std::vector<backend_entry> entries() {
    std::vector<backend_entry> e = {
        {{"torch_ref", "reference: dequantize each weight to the model dtype, then an ordinary matmul (CPU or GPU)", {}},
         make_torch_ref_backend},
    };
#if QBENCH_HAVE_CUDA
    e.push_back({{"fp16", "cuBLAS fp16 GEMM (TN, fp32 accumulate) on the (dequantized) weight; CUDA, fp16", {fuse_projections_option()}}, make_fp16_backend});
    e.push_back({{"cublaslt_w8a8",
                  "cuBLASLt int8 TN GEMM, per-token x per-channel scales (unfused epilogue kernel: cuBLASLt offers no fused int8 "
                  "outer-vector scaling on sm_90); per-channel int8 weights; CUDA, fp16",
                  {fuse_projections_option()}},
                 make_cublaslt_w8a8_backend});
    e.push_back({{"cublas_w8a8_legacy", "the FlexQ paper's baseline: cublasGemmEx int8 NN, int32 out, then a scale kernel; CUDA, fp16", {fuse_projections_option()}},
                 make_cublas_w8a8_legacy_backend});
    e.push_back({{"w6_imma", "W6Ax: 6-bit packed weights unpacked to int8 in registers, int8 tensor cores (mma.sync; wgmma for m > 32 on sm_90a), fp32 group scales; CUDA, fp16",
                  w6_options()},
                 make_w6_imma_backend});
    e.push_back({{"flexq_btc", "FlexQ W6A6/W6A8 on binary tensor cores (bit planes, mma m16n8k256 and.popc); CUDA, fp16", w6_options()},
                 make_flexq_btc_backend});
    e.push_back({{"w6ax", "W6Ax auto: w6_imma or flexq_btc per (m, n, k) from the measured crossover table; CUDA, fp16", w6_options()},
                 make_w6ax_backend});
#endif
    return e;
}

} // namespace

const registry<backend_entry> &backends() {
    static const registry<backend_entry> r(component_kind::backend, entries());
    return r;
}

} // namespace qb
