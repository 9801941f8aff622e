// Kernel benchmark of every GEMM back-end over the FlexQ paper's layer shapes (plus the GQA-correct
// LLaMA-2-70B qkv, 10240 x 8192) and M in {1, 2, 4, 8, 16, 32, 64, 128, 512, 2048}; cold L2.
//   backends: fp16 (cuBLAS), cublaslt_w8a8, cublas_w8a8_legacy (the paper's call), w6_imma,
//             flexq_btc, w6ax; act_quant (the fused activation quantizer alone, in the format of
//             the shape's W6 kernel); <backend>+aq: quantizer + GEMM as one layer (PDL-overlapped
//             for the W6 kernels; cuBLASLt with its per-token quantizer; w6ax+aq fuses the quantizer
//             into the GEMM where w6ax_fuse_act says so, label "fused"); w6_imma+fq: the same
//             layer with the quantizer fused into the GEMM (gemm_args::act_fp16; registered for
//             m <= 8 only, the sizes it serves).
//   Producer rows (m <= 8, LLaMA shapes: the kernel ahead of the layer in a LLaMA decoder, RMSNorm
//             before qkv / gate_up, SiLU(gate) x up before down; producer_quant.h), each followed
//             by w6_imma launched with PDL:
//             rmsnorm+w6_imma      the producer writes fp16 y only; the GEMM reads codes made
//                                  beforehand (what the layer would cost if quantizing were free);
//             rmsnorm+aq+w6_imma   producer, then act_quant_int8, then the GEMM (today's model);
//             rmsnorm_q+w6_imma    the producer writes the codes itself, no quantizer kernel.
//             (silu_mul* the same before down.) The quantizer's cost in a layer sequence is the
//             difference from the first row.
//   stream_read (M=1 rows only): a kernel that only reads the shape's W6 bytes, timed the same
//             way (kernels/bench/stream_probe.h): the attainable floor of this harness.
//             --stream-sweep registers every probe configuration instead (how the default was chosen).
//   Cold L2 (default, --l2=flush): a 2x-L2 (100 MB) read pass before every timed launch, outside
//   the timed region (a read leaves clean lines: no write-back lands in the timed region, unlike a
//   memset); one event pair per launch, so launch latency and an idle GPU before it are timed too.
//   --l2=rotate[:F]: no flush; the weights (and their scales) are held in C copies, together >= F x L2 (4),
//   and 24 launches run back to back between one event pair, each on the next copy, so every launch
//   reads weights that L2 no longer holds while the activations stay in L2 (as the previous layer's
//   output would): the steady state of a model's layer sequence. The time is the mean per launch.
//   --graph (with --l2=rotate): each batch captured once as a CUDA graph and replayed, as serving
//   engines run decode; without it, kernels shorter than the host's launch cost (act_quant alone,
//   ~3 us) time the host, not the GPU.
//   --chain (with --l2=rotate): qbench's own kernels (W6 GEMMs, quantizers, stream_read) launched
//   with programmatic dependent launch, as one layer after another in a model: each launch may
//   take the SMs the previous one's last wave leaves idle and stream its weights while that one
//   drains (it waits for it before reading activations or writing). cuBLAS's kernels offer no
//   such launch, so the fp16 / cuBLASLt / legacy rows stay as they are: a row's speedup over them
//   then includes what chaining gains, and the JSON's l2_policy says so.
//   Data: random bytes/values generated on the device (timing only; correctness is the gpu test
//   suite and --check).
//
//   bench_kernels --benchmark_out=bench.json --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
//   bench_kernels --check          (verifies w6_imma and flexq_btc once against the CPU, times nothing)
//   scripts/kernels_summary.py bench.json   -> results/kernels/h100_summary.csv, .md, .png
#include "common/bench_util.h"
#include "cublas_gemm/cublas_gemm.h"
#include "bench/stream_probe.h"
#include "flexq_btc/flexq_btc.h"
#include "quant_pack/act_quant.h"
#include "quant_pack/producer_quant.h"
#include "quant_pack/w6_layout.h"
#include "quant_pack/w6_ref.h"
#include "w6_imma/w6_imma.h"
#include "w6ax/w6ax.h"
#include "w6ax/w6ax_crossover.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace qb::w6;
using qb::cuda::check_or_die;

struct shape {
    const char *model, *layer;
    int n, k, a_bits;
};
// ../shared/reference/flexq_paper_kernels.csv, in its order, plus the real LLaMA-2-70B qkv.
const shape shapes[] = {
    {"llama-7b", "qkv", 12288, 4096, 6},       {"llama-7b", "o", 4096, 4096, 6},
    {"llama-7b", "gate_up", 11008, 4096, 6},   {"llama-7b", "down", 4096, 11008, 8},
    {"llama-30b", "qkv", 19968, 6656, 6},      {"llama-30b", "o", 6656, 6656, 6},
    {"llama-30b", "gate_up", 17920, 6656, 6},  {"llama-30b", "down", 6656, 17920, 8},
    {"llama-2-13b", "qkv", 15360, 5120, 6},    {"llama-2-13b", "o", 5120, 5120, 6},
    {"llama-2-13b", "gate_up", 13824, 5120, 6}, {"llama-2-13b", "down", 5120, 13824, 8},
    {"llama-2-70b", "qkv(no-gqa)", 24576, 8192, 6}, {"llama-2-70b", "o", 8192, 8192, 6},
    {"llama-2-70b", "gate_up", 28672, 8192, 6}, {"llama-2-70b", "down", 8192, 28672, 8},
    {"opt-30b", "qkv", 21504, 7168, 6},        {"opt-30b", "o", 7168, 7168, 6},
    {"opt-30b", "fc1", 28672, 7168, 6},        {"opt-30b", "fc2", 7168, 28672, 8},
    {"llama-2-70b", "qkv(gqa)", 10240, 8192, 6},
};
const int m_list[] = {1, 2, 4, 8, 16, 32, 64, 128, 512, 2048};
constexpr int m_max = 2048;
constexpr int producer_m_max = 8; // the producer rows serve the quantizer target's sizes

// The kernel that writes this layer's input in a LLaMA decoder, where it has one of ours: RMSNorm
// before qkv and gate_up, SiLU(gate) x up before down. OPT layers (LayerNorm, ReLU) and the o
// layers (attention) have none.
enum class producer_kind { none, rmsnorm, silu_mul };
producer_kind producer_of(const char *model, const char *layer) {
    if (std::strncmp(model, "llama", 5) != 0) return producer_kind::none;
    if (std::strncmp(layer, "qkv", 3) == 0 || std::strcmp(layer, "gate_up") == 0) return producer_kind::rmsnorm;
    if (std::strcmp(layer, "down") == 0) return producer_kind::silu_mul;
    return producer_kind::none;
}

void die_on(const qb::status &st, const char *what) {
    if (!st.ok()) {
        std::fprintf(stderr, "%s: %s\n", what, st.reason.c_str());
        std::exit(1);
    }
}

template <class T>
T *dev_alloc(size_t count) {
    T *p = nullptr;
    check_or_die(cudaMalloc(&p, std::max<size_t>(count, 1) * sizeof(T)), "cudaMalloc");
    return p;
}

// One copy of a shape's weights in every back-end's format (--l2=rotate keeps several).
struct weight_set {
    __half *w16 = nullptr, *w6_scales = nullptr;
    int8_t *w8 = nullptr;
    uint8_t *w6_imma = nullptr, *w6_btc = nullptr;
    float *sw_ch = nullptr;
};

// Device buffers of the shape being benchmarked (one shape at a time: benchmarks run shape-major).
struct shape_data {
    int n = 0, k = 0;
    std::vector<weight_set> weights;
    __half *x = nullptr, *out = nullptr;
    __half *gain = nullptr, *gate_up = nullptr, *y = nullptr; // producer rows: norm gain [k], [8, 2k] gate | up, y [8, k]
    int8_t *x8 = nullptr;
    uint32_t *planes = nullptr;
    float *sx = nullptr, *sx_tok = nullptr;
    int32_t *acc32 = nullptr;
    ~shape_data() {
        for (void *p : {(void *)x, (void *)out, (void *)gain, (void *)gate_up, (void *)y, (void *)x8, (void *)planes, (void *)sx, (void *)sx_tok,
                        (void *)acc32})
            cudaFree(p);
        for (auto &w : weights)
            for (void *p : {(void *)w.w16, (void *)w.w6_scales, (void *)w.w8, (void *)w.w6_imma, (void *)w.w6_btc, (void *)w.sw_ch}) cudaFree(p);
    }
};

struct globals {
    std::unique_ptr<shape_data> data;
    cublas_context blas;
    void *flush_buf = nullptr;
    size_t flush_bytes = 0; // 2x L2
    size_t l2_bytes = 0;
    uint32_t *sink = nullptr;
    cudaStream_t stream = nullptr;
    bool rotate = false;    // --l2=rotate
    int rotate_factor = 4; // the copies together hold >= this many times the L2 size
    bool graph = false;    // --graph: each rotate batch replayed as one CUDA graph
    bool chain = false;    // --chain: our launches programmatically dependent on the one before
};
globals *g = nullptr;

// Copies of the weights for --l2=rotate: enough that the W6 copies (the smallest format) together
// are >= F x L2, at least 2, so that a launch does not find its weights left in L2 by the launches
// before it. F = 4: with F = 2 the read-only kernel ran 2% faster in the geomean (up to 4% on a
// shape) than with 4, the GEMMs 0.2% (H100, 21 shapes): L2 replacement is not LRU, and some lines
// outlive 2x L2 of other reads. One copy when flushing.
int weight_copies(int n, int k) {
    if (!g->rotate) return 1;
    const double w6 = double(packed_weight_bytes(n, k) + packed_scale_bytes(n, k));
    return std::max(2, int(std::ceil(double(g->l2_bytes) * g->rotate_factor / w6)));
}

shape_data &data_for(int n, int k) {
    if (g->data && g->data->n == n && g->data->k == k) return *g->data;
    g->data.reset();
    check_or_die(cudaDeviceSynchronize(), "sync");
    auto d = std::make_unique<shape_data>();
    d->n = n;
    d->k = k;
    const size_t nk = size_t(n) * k, groups = k / group_size;
    d->x = dev_alloc<__half>(size_t(m_max) * k);
    d->x8 = dev_alloc<int8_t>(size_t(m_max) * k);
    d->planes = dev_alloc<uint32_t>(size_t(m_max) * groups * 4 * 8);
    d->sx = dev_alloc<float>(size_t(m_max) * groups);
    d->sx_tok = dev_alloc<float>(m_max);
    d->out = dev_alloc<__half>(size_t(m_max) * n);
    d->acc32 = dev_alloc<int32_t>(size_t(m_max) * n);
    die_on(fill_random_half(d->x, size_t(m_max) * k, 2.f, 1, nullptr), "fill x");
    d->gain = dev_alloc<__half>(k);
    d->gate_up = dev_alloc<__half>(size_t(producer_m_max) * 2 * k);
    d->y = dev_alloc<__half>(size_t(producer_m_max) * k);
    die_on(fill_random_scales(d->gain, k, 0.8f, 1.2f, 9, nullptr), "fill gain");
    die_on(fill_random_half(d->gate_up, size_t(producer_m_max) * 2 * k, 4.f, 10, nullptr), "fill gate_up");
    d->weights.resize(weight_copies(n, k));
    for (size_t c = 0; c < d->weights.size(); ++c) {
        auto &w = d->weights[c];
        const uint32_t seed = uint32_t(16 * c);
        w.w16 = dev_alloc<__half>(nk);
        w.w8 = dev_alloc<int8_t>(nk);
        w.w6_imma = dev_alloc<uint8_t>(size_t(packed_weight_bytes(n, k)));
        w.w6_btc = dev_alloc<uint8_t>(size_t(packed_weight_bytes(n, k)));
        w.w6_scales = dev_alloc<__half>(size_t(packed_scale_bytes(n, k)) / 2);
        w.sw_ch = dev_alloc<float>(n);
        die_on(fill_random_half(w.w16, nk, 0.05f, seed + 2, nullptr), "fill w16");
        die_on(fill_random_bytes(w.w8, nk, seed + 3, nullptr), "fill w8");
        die_on(fill_random_bytes(w.w6_imma, size_t(packed_weight_bytes(n, k)), seed + 4, nullptr), "fill w6");
        die_on(fill_random_bytes(w.w6_btc, size_t(packed_weight_bytes(n, k)), seed + 5, nullptr), "fill w6 btc");
        die_on(fill_random_scales(w.w6_scales, size_t(packed_scale_bytes(n, k)) / 2, 1e-3f, 2e-2f, seed + 6, nullptr), "fill scales");
        // Per-channel weight scales for the W8A8 baselines (fp32).
        std::vector<float> sw(n);
        std::mt19937 rng(unsigned(seed + 7));
        std::uniform_real_distribution<float> u(1e-3f, 2e-2f);
        for (auto &v : sw) v = u(rng);
        check_or_die(cudaMemcpy(w.sw_ch, sw.data(), n * sizeof(float), cudaMemcpyHostToDevice), "copy sw");
    }
    check_or_die(cudaDeviceSynchronize(), "fill");
    g->data = std::move(d);
    return *g->data;
}

enum class backend { fp16, lt_w8a8, legacy, imma, btc, w6ax, act_quant, imma_aq, btc_aq, w6ax_aq, lt_aq, imma_fq, producer, producer_aq, producer_q };
const char *backend_name(backend b) {
    switch (b) {
    case backend::fp16: return "fp16";
    case backend::lt_w8a8: return "cublaslt_w8a8";
    case backend::legacy: return "cublas_w8a8_legacy";
    case backend::imma: return "w6_imma";
    case backend::btc: return "flexq_btc";
    case backend::w6ax: return "w6ax";
    case backend::act_quant: return "act_quant";
    case backend::imma_aq: return "w6_imma+aq";
    case backend::btc_aq: return "flexq_btc+aq";
    case backend::w6ax_aq: return "w6ax+aq";
    case backend::lt_aq: return "cublaslt_w8a8+aq";
    case backend::imma_fq: return "w6_imma+fq";
    case backend::producer: return "+w6_imma";
    case backend::producer_aq: return "+aq+w6_imma";
    case backend::producer_q: return "_q+w6_imma";
    }
    return "?";
}
bool is_producer_row(backend b) { return b == backend::producer || b == backend::producer_aq || b == backend::producer_q; }

gemm_args w6_args(shape_data &d, const weight_set &w, int m, int a_bits, bool btc) {
    gemm_args a;
    a.m = m, a.n = d.n, a.k = d.k, a.a_bits = a_bits;
    a.w = btc ? w.w6_btc : w.w6_imma;
    a.w_scales = w.w6_scales;
    a.act = btc ? static_cast<const void *>(d.planes) : static_cast<const void *>(d.x8);
    a.act_scales = d.sx;
    a.out = d.out;
    return a;
}

// The timed loop of both protocols. flush: launch on copy 0 after a 2x-L2 read pass, one launch per
// event pair. rotate: batches of back-to-back launches cycling through the copies.
bool time_launches(benchmark::State &state, int copies, const std::function<void(int)> &launch) {
    cudaStream_t st = g->stream;
    if (!g->rotate) {
        qb::cuda::time_cuda_iterations(
            state, st, [&] { die_on(l2_flush_read(g->flush_buf, g->flush_bytes, g->sink, st), "flush"); }, [&] { launch(0); });
        return true;
    }
    // 24 launches per batch (a multiple of the copies, so every copy is read equally often); the
    // warm-up touches every copy once.
    const int per_batch = copies * std::max(1, (24 + copies - 1) / copies);
    return qb::cuda::time_cuda_batches(state, st, per_batch, copies, [&](int i) { launch(i % copies); }, g->graph);
}

void bench(benchmark::State &state, backend b, shape s, int m) {
    auto &d = data_for(s.n, s.k);
    cudaStream_t st = g->stream;
    const bool choose_btc = w6ax_choose(m, s.n, s.k, s.a_bits) == w6ax_choice::w6ax_choice_btc;
    const bool btc_fmt = b == backend::btc || b == backend::btc_aq || ((b == backend::w6ax || b == backend::w6ax_aq || b == backend::act_quant) && choose_btc);
    // Inputs of the GEMM-only rows: quantized once, outside the timing, in the order w6_imma reads.
    const auto order = w6_imma_act_order(m);
    die_on(act_quant_int8(d.x, m, s.k, s.a_bits, d.x8, d.sx, st, order), "act_quant_int8");
    die_on(act_quant_planes(d.x, m, s.k, s.a_bits, d.planes, d.sx, st), "act_quant_planes");
    die_on(act_quant_token(d.x, m, s.k, d.x8 + 0, d.sx_tok, st), "act_quant_token");
    check_or_die(cudaStreamSynchronize(st), "quantize inputs");
    std::string label;
    qb::status err;
    auto record = [&](const qb::status &x) {
        if (!x.ok() && err.ok()) err = x;
    };
    // launch(c): one launch (or quantizer + GEMM) on weight copy c.
    std::function<void(int)> launch;
    // The layer with the quantizer inside the GEMM: fp16 activations straight to w6_imma.
    auto fused_launch = [&](int c) {
        auto a = w6_args(d, d.weights[c], m, s.a_bits, false);
        a.act = nullptr, a.act_scales = nullptr;
        a.act_fp16 = d.x;
        a.pdl = g->chain;
        record(w6_imma_run(a, st));
    };
    switch (b) {
    case backend::fp16: launch = [&](int c) { record(g->blas.gemm_fp16(m, s.n, s.k, d.x, d.weights[c].w16, d.out, st)); }; break;
    case backend::lt_w8a8:
        launch = [&](int c) {
            const auto &w = d.weights[c];
            record(g->blas.gemm_w8a8_lt(m, s.n, s.k, d.x8, w.w8, d.sx_tok, w.sw_ch, d.out, d.acc32, st));
        };
        break;
    case backend::lt_aq:
        launch = [&](int c) {
            const auto &w = d.weights[c];
            record(act_quant_token(d.x, m, s.k, d.x8, d.sx_tok, st, g->chain));
            record(g->blas.gemm_w8a8_lt(m, s.n, s.k, d.x8, w.w8, d.sx_tok, w.sw_ch, d.out, d.acc32, st));
        };
        break;
    case backend::legacy: launch = [&](int c) { record(g->blas.gemm_w8a8_legacy(m, s.n, s.k, d.x8, d.weights[c].w8, d.acc32, st)); }; break;
    case backend::imma:
    case backend::btc:
    case backend::w6ax: {
        const bool use_btc = b == backend::btc || (b == backend::w6ax && choose_btc);
        launch = [&, use_btc](int c) {
            auto a = w6_args(d, d.weights[c], m, s.a_bits, use_btc);
            a.pdl = g->chain;
            record(use_btc ? flexq_btc_run(a, st) : w6_imma_run(a, st));
        };
        label = use_btc ? w6_config_name(m) : w6_imma_config_name(m);
        if (b == backend::w6ax) label += std::string(" ") + (use_btc ? "flexq_btc" : "w6_imma");
        break;
    }
    case backend::act_quant:
        launch = [&](int) {
            record(btc_fmt ? act_quant_planes(d.x, m, s.k, s.a_bits, d.planes, d.sx, st, g->chain)
                           : act_quant_int8(d.x, m, s.k, s.a_bits, d.x8, d.sx, st, order, g->chain));
        };
        label = btc_fmt ? "planes" : "int8";
        break;
    case backend::imma_aq:
    case backend::btc_aq:
    case backend::w6ax_aq:
        if (b == backend::w6ax_aq && !btc_fmt && w6ax_fuse_act(m, s.n, s.k, s.a_bits)) {
            launch = fused_launch;
            label = std::string(w6_config_name(m)) + " fused";
            break;
        }
        launch = [&](int c) {
            if (btc_fmt) record(act_quant_planes(d.x, m, s.k, s.a_bits, d.planes, d.sx, st, g->chain));
            else record(act_quant_int8(d.x, m, s.k, s.a_bits, d.x8, d.sx, st, order, g->chain));
            auto a = w6_args(d, d.weights[c], m, s.a_bits, btc_fmt);
            a.pdl = true; // weights stream while the quantizer finishes
            record(btc_fmt ? flexq_btc_run(a, st) : w6_imma_run(a, st));
        };
        label = std::string(btc_fmt ? w6_config_name(m) : w6_imma_config_name(m)) + " pdl";
        break;
    case backend::imma_fq:
        launch = fused_launch;
        label = std::string(w6_config_name(m)) + " fused";
        break;
    case backend::producer:
    case backend::producer_aq:
    case backend::producer_q: {
        // The producer reads x (RMSNorm) or gate | up (SiLU x up), both warm in L2 like the output
        // of the kernel before it; in a chain it waits for the previous batch's GEMM.
        const bool norm = producer_of(s.model, s.layer) == producer_kind::rmsnorm;
        launch = [&, norm, b](int c) {
            const bool codes_inside = b == backend::producer_q;
            const act_codes_out codes = codes_inside ? act_codes_out{d.x8, d.sx, s.a_bits, order} : act_codes_out{};
            __half *y = codes_inside ? nullptr : d.y;
            if (norm) record(rmsnorm_quant_int8(d.x, d.gain, 1e-5f, m, s.k, y, codes, st, g->chain));
            else record(silu_mul_quant_int8(d.gate_up, d.gate_up + s.k, 2 * s.k, m, s.k, y, codes, st, g->chain));
            if (b == backend::producer_aq) record(act_quant_int8(d.y, m, s.k, s.a_bits, d.x8, d.sx, st, order, g->chain));
            auto a = w6_args(d, d.weights[c], m, s.a_bits, false);
            a.pdl = true; // weights stream while the producer (and quantizer) run
            record(w6_imma_run(a, st));
        };
        label = std::string(w6_imma_config_name(m)) + " pdl";
        break;
    }
    }
    launch(0);
    check_or_die(cudaStreamSynchronize(st), "first launch");
    if (!err.ok()) {
        state.SkipWithError(err.reason.c_str());
        return;
    }
    if (b == backend::lt_w8a8 || b == backend::lt_aq) label = g->blas.fused_epilogue() ? "fused scales" : "int32 + epilogue kernel";
    if (!time_launches(state, int(d.weights.size()), launch)) label += " (graph capture failed: direct launches)";
    if (!err.ok()) state.SkipWithError(err.reason.c_str());
    state.SetLabel(label);
    // Weight bytes as stored by each back-end (the roofline numerator; activations excluded).
    double wbytes = 0;
    switch (b) {
    case backend::fp16: wbytes = 2.0 * s.n * s.k; break;
    case backend::lt_w8a8:
    case backend::lt_aq:
    case backend::legacy: wbytes = double(s.n) * s.k + 4.0 * s.n; break;
    case backend::act_quant: wbytes = 0; break;
    default: wbytes = double(packed_weight_bytes(s.n, s.k) + packed_scale_bytes(s.n, s.k));
    }
    state.counters["weight_bytes"] = wbytes;
    state.counters["TBps"] = benchmark::Counter(wbytes / 1e12, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["TOPS"] = benchmark::Counter(b == backend::act_quant ? 0.0 : 2.0 * m * s.n * s.k / 1e12, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["a_bits"] = s.a_bits;
}

// The attainable floor: read the W6 weights + scales of the shape and nothing else.
void bench_stream(benchmark::State &state, shape s, qb::bench::stream_config cfg) {
    cudaStream_t st = g->stream;
    // The GEMMs read weights and scales from two buffers; the probe reads as many bytes from one
    // (filled with random bytes like the weights).
    const size_t bytes = size_t(packed_weight_bytes(s.n, s.k) + packed_scale_bytes(s.n, s.k));
    const size_t stride = (bytes + 255) / 256 * 256;
    const int copies = weight_copies(s.n, s.k);
    uint8_t *buf = dev_alloc<uint8_t>(stride * copies);
    die_on(fill_random_bytes(buf, stride * copies, 8, st), "fill stream buffer");
    cudaError_t err = cudaSuccess;
    auto launch = [&](int c) {
        if (cudaError_t e = qb::bench::stream_read(buf + stride * c, bytes, g->sink, cfg, st, g->chain); e != cudaSuccess && err == cudaSuccess) err = e;
    };
    launch(0);
    check_or_die(cudaStreamSynchronize(st), "first stream launch");
    if (err != cudaSuccess) {
        state.SkipWithError(cudaGetErrorString(err));
        cudaFree(buf);
        return;
    }
    const bool graphed = time_launches(state, copies, launch);
    cudaFree(buf);
    state.SetLabel(qb::bench::describe(cfg) + (graphed ? "" : " (graph capture failed: direct launches)"));
    state.counters["weight_bytes"] = double(bytes);
    state.counters["TBps"] = benchmark::Counter(double(bytes) / 1e12, benchmark::Counter::kIsIterationInvariantRate);
    state.counters["TOPS"] = 0;
    state.counters["a_bits"] = s.a_bits;
}

int iterations_for(backend b, int m, const shape &s) {
    const double nk = double(s.n) * s.k;
    double bytes = nk * 0.77, rate = 400e12;
    switch (b) {
    case backend::fp16: bytes = 2 * nk, rate = 600e12; break;
    case backend::lt_w8a8:
    case backend::lt_aq: bytes = nk, rate = 600e12; break;
    case backend::legacy: bytes = nk, rate = 100e12; break;
    case backend::btc:
    case backend::btc_aq: rate = 120e12; break;
    case backend::act_quant: bytes = 2.0 * m * s.k, rate = 1e18; break;
    default: break;
    }
    const double est_us = std::max(bytes / 2.5e12, 2.0 * m * nk / rate) * 1e6 + 5;
    if (g->rotate) return std::clamp(int(3000 / (24 * est_us + 60)), 2, 10); // each iteration is a batch of ~24 launches
    return std::clamp(int(8000 / (est_us + 60)), 3, 30);
}

int run_check() {
    // One small problem per back-end (and a prefill size: w6_imma's wgmma path), per-group
    // integers against the CPU reference.
    const int n = 40, k = 256;
    int failures = 0;
    for (int m : {5, 200})
    for (int a_bits : {6, 8})
        for (bool btc : {false, true}) {
            std::mt19937 rng(1);
            std::vector<float> wf(size_t(n) * k);
            std::normal_distribution<float> nd(0.f, 0.02f);
            for (auto &v : wf) v = nd(rng);
            auto qw = quantize_weights_ref(wf.data(), n, k);
            std::vector<uint16_t> x(size_t(m) * k);
            for (auto &v : x) v = float_to_half(nd(rng) * 100);
            auto qa = quantize_acts_ref(x.data(), m, k, a_bits, 128);
            const auto qa_dev = !btc && w6_imma_uses_wgmma(m) ? order_acts_wgmma_ref(qa.q.data(), m, k) : qa.q;
            auto p = btc ? pack_weights_btc(qw) : pack_weights_imma(qw);
            auto planes = pack_act_planes_ref(qa.q.data(), m, k, a_bits);
            auto *dw = dev_alloc<uint8_t>(p.data.size());
            auto *ds = dev_alloc<uint16_t>(p.scales.size());
            auto *da = dev_alloc<uint32_t>(std::max(planes.size(), qa.q.size() / 4));
            auto *dsx = dev_alloc<float>(qa.scales.size());
            auto *dout = dev_alloc<__half>(size_t(m) * n);
            auto *dacc = dev_alloc<int32_t>(size_t(m) * n * 2);
            cudaMemcpy(dw, p.data.data(), p.data.size(), cudaMemcpyHostToDevice);
            cudaMemcpy(ds, p.scales.data(), p.scales.size() * 2, cudaMemcpyHostToDevice);
            if (btc) cudaMemcpy(da, planes.data(), planes.size() * 4, cudaMemcpyHostToDevice);
            else cudaMemcpy(da, qa_dev.data(), qa_dev.size(), cudaMemcpyHostToDevice);
            cudaMemcpy(dsx, qa.scales.data(), qa.scales.size() * 4, cudaMemcpyHostToDevice);
            gemm_args a;
            a.m = m, a.n = n, a.k = k, a.a_bits = a_bits, a.w = dw, a.w_scales = reinterpret_cast<const __half *>(ds), a.act = da;
            a.act_scales = dsx, a.out = dout, a.group_acc = dacc;
            auto st = btc ? flexq_btc_run(a, nullptr) : w6_imma_run(a, nullptr);
            check_or_die(cudaDeviceSynchronize(), "check kernel");
            std::vector<int32_t> acc(size_t(m) * n * 2);
            cudaMemcpy(acc.data(), dacc, acc.size() * 4, cudaMemcpyDeviceToHost);
            const bool ok = st.ok() && acc == gemm_group_acc_ref(qa.q.data(), qw.q.data(), m, n, k);
            std::printf("bench_kernels --check: %s a%d %dx%dx%d: %s\n", btc ? "flexq_btc" : "w6_imma", a_bits, m, n, k, ok ? "ok" : "MISMATCH");
            failures += !ok;
            for (void *q : {(void *)dw, (void *)ds, (void *)da, (void *)dsx, (void *)dout, (void *)dacc}) cudaFree(q);
        }
    return failures ? 1 : 0;
}

} // namespace

int main(int argc, char **argv) {
    bool check_only = false, stream_sweep = false, rotate = false, graph = false, chain = false;
    int rotate_factor = 4;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--check") == 0) check_only = true;
        if (std::strcmp(argv[i], "--stream-sweep") == 0) stream_sweep = true;
        if (std::strcmp(argv[i], "--graph") == 0) graph = true;
        if (std::strcmp(argv[i], "--chain") == 0) chain = true;
        if (std::strcmp(argv[i], "--l2=rotate") == 0) rotate = true;
        else if (std::strncmp(argv[i], "--l2=rotate:", 12) == 0 && std::atoi(argv[i] + 12) >= 1 && std::atoi(argv[i] + 12) <= 16)
            rotate = true, rotate_factor = std::atoi(argv[i] + 12);
        else if (std::strncmp(argv[i], "--l2=", 5) == 0 && std::strcmp(argv[i], "--l2=flush") != 0) {
            std::fprintf(stderr, "bench_kernels: unknown %s (--l2=flush, the default, --l2=rotate (= rotate:4) or --l2=rotate:F, F = 1..16 times the L2 size)\n",
                         argv[i]);
            return 2;
        }
    }
    if (const int rc = qb::cuda::no_device_exit_code("bench_kernels", check_only); rc >= 0) return rc;
    if (check_only) return run_check();
    g = new globals();
    g->rotate = rotate;
    g->rotate_factor = rotate_factor;
    g->graph = rotate && graph;
    g->chain = rotate && chain;
    if ((graph || chain) && !rotate) {
        std::fprintf(stderr, "bench_kernels: %s needs --l2=rotate (a flush between launches leaves nothing to batch or chain)\n",
                     graph ? "--graph" : "--chain");
        return 2;
    }
    die_on(g->blas.init(), "cublas init");
    check_or_die(cudaStreamCreateWithFlags(&g->stream, cudaStreamNonBlocking), "stream");
    int l2 = 0;
    check_or_die(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, 0), "L2 size");
    g->l2_bytes = size_t(l2);
    g->flush_bytes = size_t(l2) * 2;
    check_or_die(cudaMalloc(&g->flush_buf, g->flush_bytes), "flush buffer");
    check_or_die(cudaMemset(g->flush_buf, 1, g->flush_bytes), "flush buffer init");
    g->sink = dev_alloc<uint32_t>(1);
    qb::cuda::add_benchmark_context(rotate ? "rotate: weights cold (copies together >= " + std::to_string(rotate_factor) +
                                                 "x L2, each launch on the next), activations warm in L2; 24 launches back to back per event pair, "
                                                 "mean per launch" + (graph ? "; each batch one CUDA graph" : "") +
                                                 (chain ? "; qbench kernels chained by programmatic dependent launch (cuBLAS kernels not)" : "")
                                           : std::string("cold: 2x L2 read pass (clean lines) before every timed launch"));
    benchmark::AddCustomContext("w6ax_crossover", w6ax_tables_source());
    benchmark::AddCustomContext("w6_roofline", "weights+scales bytes (6.125 bits/weight) / 3.0 TB/s");
    // Runs before ffe6c90 lack this key: their cuBLAS calls ran with cuBLAS's own workspace pool, and
    // under --graph each split-K fp16 / legacy GEMM carried a workspace allocation in the graph.
    benchmark::AddCustomContext("cublas_workspace", "qbench's 32 MiB, set again after every cublasSetStream");
    const backend all[] = {backend::fp16,  backend::lt_w8a8,   backend::legacy,    backend::imma,    backend::btc,  backend::w6ax,
                           backend::act_quant, backend::imma_aq, backend::btc_aq, backend::w6ax_aq, backend::lt_aq, backend::imma_fq,
                           backend::producer, backend::producer_aq, backend::producer_q};
    for (const auto &s : shapes) {
        const std::string tail = std::string("/") + s.model + "/" + s.layer + "/a" + std::to_string(s.a_bits);
        auto configs = stream_sweep ? qb::bench::stream_sweep() : std::vector<qb::bench::stream_config>{qb::bench::stream_default()};
        for (const auto &cfg : configs) {
            std::string id = qb::bench::describe(cfg);
            std::replace(id.begin(), id.end(), ' ', '-');
            const std::string name = (stream_sweep ? "stream_read:" + id : std::string("stream_read")) + tail;
            benchmark::RegisterBenchmark(name.c_str(), bench_stream, s, cfg)
                ->Args({1, s.n, s.k})
                ->ArgNames({"m", "n", "k"})
                ->UseManualTime()
                ->Iterations(rotate ? 10 : 30)
                ->Unit(benchmark::kMicrosecond);
        }
        if (stream_sweep) continue;
        for (int m : m_list)
            for (backend b : all) {
                if (b == backend::imma_fq && !w6_imma_fused_supports(m, s.a_bits).ok()) continue; // decode sizes only
                const producer_kind pk = producer_of(s.model, s.layer);
                if (is_producer_row(b) && (pk == producer_kind::none || m > producer_m_max)) continue;
                const std::string prefix = is_producer_row(b) ? (pk == producer_kind::rmsnorm ? "rmsnorm" : "silu_mul") : "";
                const std::string name = prefix + backend_name(b) + "/" + s.model + "/" + s.layer + "/a" + std::to_string(s.a_bits);
                benchmark::RegisterBenchmark(name.c_str(), bench, b, s, m)
                    ->Args({m, s.n, s.k})
                    ->ArgNames({"m", "n", "k"})
                    ->UseManualTime()
                    ->Iterations(iterations_for(b, m, s))
                    ->Unit(benchmark::kMicrosecond);
            }
    }
    // Google Benchmark rejects flags it does not know.
    int kept = 1;
    for (int i = 1; i < argc; ++i)
        if (std::strcmp(argv[i], "--stream-sweep") != 0 && std::strncmp(argv[i], "--l2=", 5) != 0 && std::strcmp(argv[i], "--graph") != 0 &&
            std::strcmp(argv[i], "--chain") != 0)
            argv[kept++] = argv[i];
    argc = kept;
    benchmark::Initialize(&argc, argv);
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    check_or_die(cudaDeviceSynchronize(), "end");
    return 0;
}
