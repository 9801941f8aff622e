// A KV-cache decode step captured once as a CUDA graph and replayed for every new token.
//
// Why: at batch 1 a decode step of a 7B model is ~32 x 20 small kernels, and LibTorch's eager
// dispatch spends more host time launching them than the GPU spends running them (on the H100 the
// W6 step measured 13 ms/token eager against a ~1.7 ms weight-read floor). A graph replays the
// whole step with one launch. It captures llama_model::forward_step, whose shapes do not depend on
// the position, so one capture serves every position of the cache it was captured with.
#pragma once
#include "model/llama.h"

#include <cstdint>
#include <memory>
#include <string>

namespace qb {

// Whether this build can capture CUDA graphs (a CUDA build; the device is checked on capture).
bool decode_graphs_available();
// Whether decode_step_graph can capture this model's steps: a CUDA build and a CUDA model.
inline bool decode_graph_possible(const llama_model &model) { return decode_graphs_available() && model.device().is_cuda(); }

class decode_step_graph {
public:
    // Captures one step of batch `cache.k[0].size(0)` on the model's CUDA device. The graph keeps
    // the cache's tensors: every step() must use this cache (refill it by prefill as often as
    // wanted; its length says where the next token goes). Capturing runs the step a few times on
    // a side stream first (lazy initializations must not happen inside the capture); those runs
    // write keys and values at position cache.length, which the next real step overwrites.
    // Throws qb::error naming what failed (a CPU model, a full cache, an operation the capture
    // refused). fused: forward_step's choice of kernels (model/step_kernels.h).
    decode_step_graph(const llama_model &model, kv_cache &cache, bool fused = true);
    ~decode_step_graph();
    decode_step_graph(const decode_step_graph &) = delete;
    decode_step_graph &operator=(const decode_step_graph &) = delete;

    // Runs tokens [B, 1] at position cache.length on the current stream and advances the cache.
    // Returns logits [B, 1, vocab] fp32: the graph's own output tensor, overwritten by the next step
    // (clone it to keep it).
    at::Tensor step(const at::Tensor &tokens);

    // The captured step's size: graph nodes, and of those kernel launches.
    int64_t nodes() const;
    int64_t kernels() const;
    // Every node type with its count, most frequent first ("kernel 324, mem alloc 64, mem free 64").
    std::string node_types() const;
    // Wall time of the construction: warm-up steps, capture, instantiation.
    double capture_ms() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

} // namespace qb
