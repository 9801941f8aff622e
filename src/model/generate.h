// Text generation with the KV cache: one prefill of the prompt, then one token per step.
#pragma once
#include "model/llama.h"

#include <cstdint>
#include <functional>
#include <vector>

namespace qb {

struct generate_options {
    int64_t max_new_tokens = 64;
    double temperature = 0.0; // 0 = greedy (argmax)
    double top_p = 1.0;       // nucleus sampling when temperature > 0
    uint64_t seed = 0;
    int32_t stop_id = -1;     // end of sequence (not emitted)
    bool decode_graph = true; // on a CUDA model: decode steps as one captured CUDA graph (decode_graph.h)
};

struct generate_result {
    std::vector<int32_t> tokens; // the new tokens only
    double prefill_ms = 0;       // prompt forward, device synchronized
    double decode_ms = 0;        // all decode steps together
    int64_t decode_steps = 0;    // forward passes of one token
    bool used_graph = false;     // the decode steps replayed a CUDA graph
    double graph_capture_ms = 0; // capturing it (not in decode_ms)
    int64_t graph_kernels = 0;   // kernel launches in one captured step
};

// `on_token` (optional) sees each new token as it is produced (streaming output).
generate_result generate(const llama_model &model, const std::vector<int32_t> &prompt, const generate_options &options,
                         const std::function<void(int32_t)> &on_token = {});

// Blocks until queued GPU work is done (no-op on the CPU), so wall-clock timings are honest.
void synchronize_device(const at::Device &device);

} // namespace qb
