#include "model/decode_graph.h"

#include "config.h"
#include "core/error.h"

#include <ATen/ATen.h>

#if QBENCH_HAVE_CUDA
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime.h>
#endif

#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <map>
#include <string>
#include <vector>

namespace qb {

#if QBENCH_HAVE_CUDA

bool decode_graphs_available() { return true; }

struct decode_step_graph::impl {
    kv_cache *cache = nullptr;
    at::Tensor tokens, pos, logits; // the graph's input and output tensors, fixed addresses
    std::unique_ptr<at::cuda::CUDAGraph> graph; // made after the checks: constructing one touches the CUDA runtime
    int64_t nodes = 0, kernels = 0;
    std::string node_types;
    double capture_ms = 0;
};

namespace {

const char *node_type_name(cudaGraphNodeType type) {
    switch (type) {
    case cudaGraphNodeTypeKernel: return "kernel";
    case cudaGraphNodeTypeMemcpy: return "memcpy";
    case cudaGraphNodeTypeMemset: return "memset";
    case cudaGraphNodeTypeHost: return "host";
    case cudaGraphNodeTypeGraph: return "child graph";
    case cudaGraphNodeTypeEmpty: return "empty";
    case cudaGraphNodeTypeWaitEvent: return "event wait";
    case cudaGraphNodeTypeEventRecord: return "event record";
    case cudaGraphNodeTypeMemAlloc: return "mem alloc";
    case cudaGraphNodeTypeMemFree: return "mem free";
    default: return "other";
    }
}

// Nodes per type name, each node's type asked once.
std::map<std::string, int64_t> count_node_types(const std::vector<cudaGraphNode_t> &nodes) {
    std::map<std::string, int64_t> counts;
    for (auto n : nodes) {
        cudaGraphNodeType type;
        ++counts[cudaGraphNodeGetType(n, &type) == cudaSuccess ? node_type_name(type) : "unknown"];
    }
    return counts;
}

// "kernel 324, mem alloc 64, mem free 64": a graph's node types, most frequent first. Kernel launches
// alone do not say what else a step replays (a library's allocations or memsets, event nodes).
std::string describe_node_types(const std::map<std::string, int64_t> &counts) {
    std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
    std::stable_sort(sorted.begin(), sorted.end(), [](const auto &a, const auto &b) { return a.second > b.second; });
    std::string out;
    for (const auto &[name, count] : sorted) out += fmt::format("{}{} {}", out.empty() ? "" : ", ", name, count);
    return out;
}

} // namespace

decode_step_graph::decode_step_graph(const llama_model &model, kv_cache &cache, bool fused) : impl_(std::make_unique<impl>()) {
    const auto started = std::chrono::steady_clock::now();
    const auto device = model.device();
    if (!device.is_cuda())
        fail("decode graph: the model is on {}; CUDA graphs need a CUDA device (without a graph: decode: eager in the latency evaluation, "
             "--eager in qbench generate)",
             device.str());
    if (cache.k.empty() || cache.k.front().device() != device) fail("decode graph: the cache is empty or not on {}", device.str());
    if (cache.length >= cache.capacity()) fail("decode graph: the cache is full ({} of {} positions)", cache.length, cache.capacity());
    auto &p = *impl_;
    p.cache = &cache;
    const auto long_opts = at::TensorOptions().dtype(at::kLong).device(device);
    p.tokens = at::zeros({cache.k.front().size(0), 1}, long_opts);
    p.pos = at::full({1}, cache.length, long_opts);

    c10::cuda::CUDAGuard device_guard(device);
    // Capture needs a stream other than the legacy default one; the work queued so far (prefill)
    // must be finished before the warm-up steps touch the cache from that stream.
    cudaDeviceSynchronize();
    auto side = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index());
    c10::cuda::CUDAStreamGuard stream_guard(side);
    // Warm-up outside the capture: cuBLAS handles and workspaces for this stream, the back-ends'
    // lazily initialized contexts and kernel attributes.
    for (int i = 0; i < 2; ++i) model.forward_step(p.tokens, p.pos, cache, fused);
    side.synchronize();
    p.graph = std::make_unique<at::cuda::CUDAGraph>(/*keep_graph=*/true); // kept until counted, then instantiated
    p.graph->capture_begin();
    try {
        p.logits = model.forward_step(p.tokens, p.pos, cache, fused);
    } catch (const std::exception &e) {
        try {
            p.graph->capture_end(); // ends the (invalidated) capture so the stream is usable again
        } catch (...) {
        }
        fail("decode graph: capturing the decode step failed ({}); without a graph: decode: eager in the latency evaluation, --eager in qbench generate",
             e.what());
    }
    try {
        p.graph->capture_end();
        // What one step launches: the figure that says how far a step is from one kernel per
        // linear (recorded with the latency rows).
        size_t count = 0;
        cudaGraph_t g = p.graph->raw_cuda_graph();
        if (cudaGraphGetNodes(g, nullptr, &count) == cudaSuccess) {
            std::vector<cudaGraphNode_t> nodes(count);
            if (count && cudaGraphGetNodes(g, nodes.data(), &count) == cudaSuccess) {
                p.nodes = int64_t(count);
                const auto counts = count_node_types(nodes);
                if (const auto it = counts.find(node_type_name(cudaGraphNodeTypeKernel)); it != counts.end()) p.kernels = it->second;
                p.node_types = describe_node_types(counts);
            }
        }
        p.graph->instantiate();
    } catch (const std::exception &e) {
        fail("decode graph: the captured decode step could not be instantiated ({}); without a graph: decode: eager in the latency evaluation, "
             "--eager in qbench generate",
             e.what());
    }
    side.synchronize();
    p.capture_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
}

decode_step_graph::~decode_step_graph() = default;

int64_t decode_step_graph::nodes() const { return impl_->nodes; }
int64_t decode_step_graph::kernels() const { return impl_->kernels; }
std::string decode_step_graph::node_types() const { return impl_->node_types; }
double decode_step_graph::capture_ms() const { return impl_->capture_ms; }

at::Tensor decode_step_graph::step(const at::Tensor &tokens) {
    auto &p = *impl_;
    if (!tokens.sizes().equals(p.tokens.sizes()))
        fail("decode graph: tokens [{}] do not match the captured step's [{}, 1]", fmt::join(tokens.sizes(), ", "), p.tokens.size(0));
    if (p.cache->length >= p.cache->capacity()) fail("decode graph: the cache is full ({} of {} positions)", p.cache->length, p.cache->capacity());
    p.tokens.copy_(tokens);
    p.pos.fill_(p.cache->length);
    p.graph->replay();
    ++p.cache->length;
    return p.logits;
}

#else

bool decode_graphs_available() { return false; }

struct decode_step_graph::impl {};

decode_step_graph::decode_step_graph(const llama_model &, kv_cache &, bool) {
    fail("decode graph: this qbench was built without CUDA (without a graph: decode: eager in the latency evaluation, --eager in qbench generate)");
}

decode_step_graph::~decode_step_graph() = default;

int64_t decode_step_graph::nodes() const { return 0; }
int64_t decode_step_graph::kernels() const { return 0; }
std::string decode_step_graph::node_types() const { return {}; }
double decode_step_graph::capture_ms() const { return 0; }

at::Tensor decode_step_graph::step(const at::Tensor &) { fail("decode graph: this qbench was built without CUDA"); }

#endif

} // namespace qb
