// pipe_probe: measures, in SM clock cycles on the GPU it runs on, what bounds w6_imma's prefill
// promotion (docs/kernels.md, "Prefill"): how fast the SM converts int32 -> fp32 (I2FP) against
// the integer-add conversion, and whether int8 wgmma overlaps fp32 work at all, on the
// accumulators it just wrote or on unrelated registers. The question is open since session 16:
// with no memory traffic, wgmma + promotion took 1.6x the wgmma alone, whatever the ordering.
//
// Two kinds of kernel, one block per SM, each block timing itself on the SM clock (block_span: the
// numbers are cycles, independent of the clock the GPU ran at):
//   - pipe rates: 1024 threads, 8 independent dependency chains per thread, one operation (or the
//     three-instruction promotion of one accumulator, each way) per chain step;
//   - wgmma overlap: two warpgroups (the prefill kernel's two consumers), each doing per "group"
//     what overlap_cases lists: the kernel's four m64n128k32 s8 wgmmas (A from registers, B from a
//     16 KB swizzled shared tile) or eight or none, and promotion-shaped fp32 passes over 64
//     accumulators after the wait, before it on other registers, or alone; split between the
//     warpgroups or taking turns (named barriers).
// Pipe-rate inputs are dependency chains and overlap inputs are the previous group's results, so
// nothing is hoisted; every result is xor-reduced into a store guarded by a value random data
// practically never gives. Check the SASS (cuobjdump -sass) after a change: every case's loop must
// show its IGMMAs back to back with one WARPGROUP.DEPBAR per group (no C7520 serialization
// remark from ptxas) and the FP instructions the case names.
//
// Usage: pipe_probe [groups=4096] [repeats=5]; prints a markdown table (medians over repeats of
// the median over blocks).
#include "build_info.h" // QBENCH_GIT_DESCRIBE
#include "common/device_info.h"
#if defined(QB_W6_WGMMA)
#include "common/sm90_async.cuh"
#include "common/sm90_wgmma.cuh"
#endif

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace {

constexpr uint32_t never = 0x9E3779B9u;

void check(cudaError_t e, const char *what) {
    if (e != cudaSuccess) {
        std::fprintf(stderr, "pipe_probe: %s: %s\n", what, cudaGetErrorString(e));
        std::exit(1);
    }
}

// A block's span on the SM clock: each warp stamps its own start and end (lane 0, shared-memory
// atomics), and the block reports the last end minus the first start. (A clock read after
// __syncthreads() by a thread whose warp had nothing to do came back before the other warps had
// finished: blocks timed by such a thread reported almost 0 cycles.)
struct block_span {
    unsigned long long *first, *last;
    __device__ void init(unsigned long long *smem2) {
        first = smem2, last = smem2 + 1;
        if (threadIdx.x == 0) *first = ~0ull, *last = 0;
        __syncthreads();
    }
    __device__ void start() const {
        __syncwarp();
        if ((threadIdx.x & 31) == 0) atomicMin(first, static_cast<unsigned long long>(clock64()));
    }
    __device__ void stop() const {
        __syncwarp();
        if ((threadIdx.x & 31) == 0) atomicMax(last, static_cast<unsigned long long>(clock64()));
    }
    __device__ long long cycles() const {
        __syncthreads();
        return static_cast<long long>(*last - *first);
    }
};
__device__ __forceinline__ void opaque(float &r) { asm volatile("" : "+f"(r)); }
__device__ __forceinline__ float i2f(uint32_t i) {
    float f;
    asm volatile("cvt.rn.f32.s32 %0, %1;" : "=f"(f) : "r"(i));
    return f;
}
__device__ __forceinline__ uint32_t iadd(uint32_t a, uint32_t b) {
    uint32_t r;
    asm volatile("add.s32 %0, %1, %2;" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
__device__ __forceinline__ float ffma(float a, float b, float c) {
    float r;
    asm volatile("fma.rn.f32 %0, %1, %2, %3;" : "=f"(r) : "f"(a), "f"(b), "f"(c));
    return r;
}
__device__ __forceinline__ float fmul(float a, float b) {
    float r;
    asm volatile("mul.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
    return r;
}

// 1.5 * 2^23: as_float(i + magic_bits) = magic + i exactly for |i| < 2^22.
constexpr uint32_t magic_bits = 0x4B400000u;
constexpr float magic = 12582912.0f;

// The promotion of one accumulator, two ways (what w6_imma_wgmma.cu does, and the alternative):
//   i2fp:  acc = fma(float(i), x * w, acc)                          I2FP, FMUL, FFMA
//   magic: acc = fma(fma(as_float(i + magic_bits), w, -magic * w), x, acc)   IADD3, FFMA, FFMA
// (-magic * w is one multiply per weight row and group, exact for an fp16 w; not counted.)
__device__ __forceinline__ float promote_i2fp(uint32_t i, float x, float w, float acc) { return ffma(i2f(i), fmul(x, w), acc); }
__device__ __forceinline__ float promote_magic(uint32_t i, float x, float w, float nmw, float acc) {
    return ffma(ffma(__uint_as_float(iadd(i, magic_bits)), w, nmw), x, acc);
}

enum pipe_op { op_i2fp, op_iadd, op_ffma, op_promote_i2fp, op_promote_magic };
const char *pipe_op_name[] = {"I2FP.F32.S32", "integer add (ptxas mixes IADD3 and IMAD)", "FFMA", "promotion: I2FP + FMUL + FFMA", "promotion: IADD3 + FFMA + FFMA"};
constexpr int pipe_instructions[] = {1, 1, 1, 3, 3};
constexpr int pipe_threads = 1024, pipe_chains = 8;

template <int OP>
__global__ void __launch_bounds__(pipe_threads, 1) pipe_kernel(int iters, uint32_t seed, long long *cycles, uint32_t *sink) {
    uint32_t i[pipe_chains];
    float f[pipe_chains];
#pragma unroll
    for (int c = 0; c < pipe_chains; ++c) {
        i[c] = (seed * (threadIdx.x * pipe_chains + c + 1)) >> 12; // < 2^20: in the magic range
        f[c] = __uint_as_float((i[c] & 0x007FFFFFu) | 0x3F800000u); // [1, 2)
    }
    float x = 0.999f, w = 1.0e-3f, nmw = -magic * 1.0e-3f;
    opaque(x), opaque(w), opaque(nmw);
    __shared__ unsigned long long stamps[2];
    block_span span;
    span.init(stamps);
    span.start();
    for (int it = 0; it < iters; ++it) {
#pragma unroll
        for (int c = 0; c < pipe_chains; ++c) {
            if constexpr (OP == op_i2fp) {
                i[c] = __float_as_uint(i2f(i[c])); // a reinterpretation: no instruction
            } else if constexpr (OP == op_iadd) {
                i[c] = iadd(i[c], i[(c + 1) % pipe_chains]); // a neighbour's value: not foldable into one multiply-add
            } else if constexpr (OP == op_ffma) {
                f[c] = ffma(f[c], x, w);
            } else if constexpr (OP == op_promote_i2fp) {
                f[c] = promote_i2fp(i[c], f[c], w, f[c]); // the scale product varies, as x * w does per element in the kernel
                i[c] = __float_as_uint(f[c]);
            } else {
                f[c] = promote_magic(i[c], x, w, nmw, f[c]);
                i[c] = __float_as_uint(f[c]);
            }
        }
    }
    span.stop();
    const long long span_cycles = span.cycles();
    if (threadIdx.x == 0) cycles[blockIdx.x] = span_cycles;
    uint32_t acc = 0;
#pragma unroll
    for (int c = 0; c < pipe_chains; ++c) acc ^= i[c] ^ __float_as_uint(f[c]);
    if (acc == never) *sink = acc;
}

#if defined(QB_W6_WGMMA)
using namespace qb::cuda::sm90;

// One overlap experiment: what each of the block's two warpgroups does per group.
//   wgmma0 / wgmma1: k32 wgmmas (m64n128) per group, 0, 4 (the kernel's) or 8;
//   fp0 / fp1: promotion-shaped passes over 64 accumulators per group, 0, 1 or 2;
//   kind: the pass's instructions (fp_i2fp, fp_magic: the two promotions; fp_ffma: 3 FFMA);
//   on_acc: the pass promotes the wgmma sums after the wait (the kernel's pattern: each group's
//     wgmmas start afresh); otherwise it runs before the wait on registers the wgmmas do not own
//     (its inputs are its own previous results), and the wgmmas accumulate across groups.
// Keeping every wgmma and every pass live matters: ptxas removes a wgmma whose sums the next
// one overwrites unread (it leaves a dummy HGMMA.64x8x16), and hoists a pass whose inputs do not
// change, so an empty asm on the inputs is not enough.
enum fp_kind { fp_i2fp, fp_magic, fp_ffma };
//   ping_pong: the two warpgroups take turns to issue their wgmmas (named barriers, as
//     FlashAttention-3 schedules its softmax against the other warpgroup's GEMMs).
struct overlap_case {
    int wgmma0, wgmma1, fp0, fp1, kind;
    bool on_acc;
    const char *name;
    bool ping_pong = false;
};
constexpr overlap_case overlap_cases[] = {
    {4, 4, 0, 0, fp_i2fp, false, "both: 4 wgmma (accumulating across groups), no fp32 work"},
    {0, 0, 1, 1, fp_i2fp, false, "both: promotion pass I2FP + FMUL + FFMA only"},
    {0, 0, 1, 1, fp_magic, false, "both: promotion pass IADD + FFMA + FFMA only"},
    {4, 4, 1, 1, fp_i2fp, true, "both: 4 wgmma, wait, promote their sums, I2FP [w6_imma_wgmma up to abbdf58]"},
    {4, 4, 1, 1, fp_magic, true, "both: 4 wgmma, wait, promote their sums, IADD [w6_imma_wgmma after]"},
    {4, 4, 1, 1, fp_i2fp, true, "both, taking turns to issue: 4 wgmma, wait, promote, I2FP", true},
    {4, 4, 1, 1, fp_magic, true, "both, taking turns to issue: 4 wgmma, wait, promote, IADD", true},
    {4, 4, 1, 1, fp_i2fp, false, "both: 4 wgmma + I2FP pass on other registers before the wait"},
    {4, 4, 1, 1, fp_magic, false, "both: 4 wgmma + IADD pass on other registers before the wait"},
    {4, 4, 1, 1, fp_ffma, false, "both: 4 wgmma + 3 x 64 FFMA on other registers before the wait"},
    {8, 0, 0, 0, fp_i2fp, false, "warpgroup 0: 8 wgmma; warpgroup 1 idle"},
    {0, 0, 0, 1, fp_i2fp, false, "warpgroup 0 idle; warpgroup 1: 1 I2FP pass"},
    {0, 0, 0, 2, fp_i2fp, false, "warpgroup 0 idle; warpgroup 1: 2 I2FP passes"},
    {8, 0, 0, 2, fp_i2fp, false, "warpgroup 0: 8 wgmma; warpgroup 1: 2 I2FP passes (split roles)"},
    {0, 0, 0, 2, fp_magic, false, "warpgroup 0 idle; warpgroup 1: 2 IADD passes"},
    {8, 0, 0, 2, fp_magic, false, "warpgroup 0: 8 wgmma; warpgroup 1: 2 IADD passes (split roles)"},
};
constexpr int overlap_count = sizeof(overlap_cases) / sizeof(overlap_cases[0]);
constexpr int overlap_threads = 256, overlap_tile_bytes = 128 * 128;
constexpr int overlap_smem = overlap_tile_bytes + 1024 + 1024; // tile + 128 x 8 B of scales + alignment

// One warpgroup's group: W wgmmas, F passes of kind K.
template <int W, int F, int K, bool ON_ACC, bool PP>
__device__ __forceinline__ void overlap_group(int g, int32_t (&acci)[64], float (&accf)[64], const uint32_t (&frag)[4][4], uint64_t desc,
                                              const float *scales, int t, float w0, float w1, float nmw0, float nmw1, int wg) {
    auto pass = [&] {
        const float *sx = scales + 2 * t + 8 * (g & 15); // the kernel's 16 LDS.64 of token scales
#pragma unroll
        for (int i = 0; i < 16; ++i) {
            const float2 x = *reinterpret_cast<const float2 *>(sx + 8 * i);
#pragma unroll
            for (int q = 0; q < 4; ++q) {
                const int e = 4 * i + q;
                const float xv = (q & 1) ? x.y : x.x, wv = (q & 2) ? w1 : w0, nmw = (q & 2) ? nmw1 : nmw0;
                const uint32_t in = ON_ACC ? uint32_t(acci[e]) : __float_as_uint(accf[e]);
                if constexpr (K == fp_ffma)
                    accf[e] = ffma(ffma(ffma(accf[e], xv, wv), xv, wv), xv, wv);
                else if constexpr (K == fp_magic)
                    accf[e] = promote_magic(in, xv, wv, nmw, accf[e]);
                else
                    accf[e] = promote_i2fp(in, xv, wv, accf[e]);
            }
        }
    };
    if constexpr (W > 0) {
        reg_fence(acci);
        if constexpr (PP) asm volatile("bar.sync %0, 256;" ::"r"(1 + wg) : "memory"); // my turn
        wgmma_fence();
#pragma unroll
        for (int j = 0; j < W; ++j) wgmma_m64n128k32_s8(acci, frag[j & 3], desc + 2 * (j & 3), ON_ACC ? j > 0 : (g > 0 || j > 0));
        wgmma_commit();
        if constexpr (PP) asm volatile("bar.arrive %0, 256;" ::"r"(2 - wg) : "memory"); // the other's turn
    }
    if constexpr (!ON_ACC)
        for (int f = 0; f < F; ++f) pass();
    if constexpr (W > 0) {
        wgmma_wait_all();
        reg_fence(acci);
        reg_keep(frag);
    }
    if constexpr (ON_ACC)
        for (int f = 0; f < F; ++f) pass();
}

template <int CASE>
__global__ void __launch_bounds__(overlap_threads, 1) overlap_kernel(int groups, uint32_t seed, long long *cycles, uint32_t *sink) {
    constexpr overlap_case c = overlap_cases[CASE];
    extern __shared__ uint8_t smem_raw[];
    const uint32_t raw = smem_addr(smem_raw);
    const uint32_t base = (raw + 1023u) & ~1023u;
    uint8_t *const tile = smem_raw + (base - raw);
    float *const scales = reinterpret_cast<float *>(tile + overlap_tile_bytes);
    for (int b = threadIdx.x; b < overlap_tile_bytes / 4; b += overlap_threads)
        reinterpret_cast<uint32_t *>(tile)[b] = (seed * uint32_t(2 * b + 1)) & 0x3F3F3F3Fu; // small codes: sums stay < 2^22
    for (int b = threadIdx.x; b < 256; b += overlap_threads) scales[b] = 1.0f + 1.0e-3f * float(b);
    fence_proxy_async_smem(); // generic writes, read by wgmma through the async proxy
    __syncthreads();

    const int t = threadIdx.x & 3, wg = threadIdx.x >> 7;
    uint32_t frag[4][4];
#pragma unroll
    for (int j = 0; j < 4; ++j)
#pragma unroll
        for (int e = 0; e < 4; ++e) frag[j][e] = (seed * uint32_t(threadIdx.x * 16 + 4 * j + e + 7)) & 0x3F3F3F3Fu;
    int32_t acci[64];
    float accf[64];
#pragma unroll
    for (int e = 0; e < 64; ++e) acci[e] = int32_t(seed >> 16) + e, accf[e] = 1.0f + float(e);
    float w0 = 1.0e-3f, w1 = 2.0e-3f;
    opaque(w0), opaque(w1);
    const float nmw0 = -magic * w0, nmw1 = -magic * w1;
    const uint64_t desc = smem_desc_sw128(base);

    // The role branch sits outside the loop and on a warp-uniform value: a wgmma inside a branch
    // ptxas cannot prove warpgroup-uniform is serialized (C7520), each one waited for on its own.
    auto run_groups = [&](auto w_c, auto f_c) {
        for (int g = 0; g < groups; ++g)
            overlap_group<decltype(w_c)::value, decltype(f_c)::value, c.kind, c.on_acc, c.ping_pong>(g, acci, accf, frag, desc, scales, t, w0, w1, nmw0,
                                                                                                 nmw1, wg);
        // ping-pong: warpgroup 1 hands back one turn more than warpgroup 0 takes; take it
        if (c.ping_pong && wg == 0) asm volatile("bar.sync 1, 256;" ::: "memory");
    };
    using w0_c = std::integral_constant<int, c.wgmma0>;
    using f0_c = std::integral_constant<int, c.fp0>;
    using w1_c = std::integral_constant<int, c.wgmma1>;
    using f1_c = std::integral_constant<int, c.fp1>;
    __shared__ unsigned long long stamps[2];
    block_span span;
    span.init(stamps);
    span.start();
    if (c.ping_pong && wg == 1) asm volatile("bar.arrive 1, 256;" ::: "memory"); // warpgroup 0 goes first
    if constexpr (c.wgmma0 == c.wgmma1 && c.fp0 == c.fp1) {
        run_groups(w0_c{}, f0_c{});
    } else if (__shfl_sync(0xffffffffu, wg, 0) == 0) {
        run_groups(w0_c{}, f0_c{});
    } else {
        run_groups(w1_c{}, f1_c{});
    }
    span.stop();
    const long long span_cycles = span.cycles();
    if (threadIdx.x == 0) cycles[blockIdx.x] = span_cycles;
    uint32_t acc = 0;
#pragma unroll
    for (int e = 0; e < 64; ++e) acc ^= uint32_t(acci[e]) ^ __float_as_uint(accf[e]);
    if (acc == never) *sink = acc;
}
#endif // QB_W6_WGMMA

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Median over repeats of the median over blocks of each block's cycles.
template <class Launch>
double measure_cycles(int blocks, int repeats, long long *d_cycles, Launch launch) {
    std::vector<long long> host(blocks);
    std::vector<double> per_repeat;
    launch(); // warm-up (and first-launch costs)
    check(cudaDeviceSynchronize(), "warm-up");
    for (int r = 0; r < repeats; ++r) {
        launch();
        check(cudaGetLastError(), "launch");
        check(cudaDeviceSynchronize(), "run");
        check(cudaMemcpy(host.data(), d_cycles, sizeof(long long) * blocks, cudaMemcpyDeviceToHost), "copy cycles");
        per_repeat.push_back(median(std::vector<double>(host.begin(), host.end())));
    }
    return median(per_repeat);
}

template <int OP>
double pipe_rate(int sms, int repeats, long long *d_cycles, uint32_t *d_sink) {
    constexpr int iters = 4096;
    const double cycles = measure_cycles(sms, repeats, d_cycles, [&] { pipe_kernel<OP><<<sms, pipe_threads>>>(iters, 0x2545F491u, d_cycles, d_sink); });
    // warp instructions per cycle per SM
    return double(pipe_threads / 32) * iters * pipe_chains * pipe_instructions[OP] / cycles;
}

} // namespace

int main(int argc, char **argv) {
    const int groups = argc > 1 ? std::atoi(argv[1]) : 4096;
    const int repeats = argc > 2 ? std::atoi(argv[2]) : 5;
    const auto env = qb::cuda::query_cuda_environment();
    if (env.gpus.empty()) {
        std::fprintf(stderr, "pipe_probe: no GPU (%s)\n", env.error.c_str());
        return 1;
    }
    const auto &gpu = env.gpus.front();
    const int sms = gpu.sm_count;
    long long *d_cycles = nullptr;
    uint32_t *d_sink = nullptr;
    check(cudaMalloc(&d_cycles, sizeof(long long) * sms), "cudaMalloc");
    check(cudaMalloc(&d_sink, sizeof(uint32_t)), "cudaMalloc");
    std::printf("# pipe_probe on %s (%d SMs, driver %s, SM clock %d / %d MHz), qbench %s; cycles by clock64, medians of %d repeats\n\n",
                gpu.name.c_str(), sms, gpu.driver.c_str(), gpu.sm_clock_mhz, gpu.sm_clock_max_mhz, QBENCH_GIT_DESCRIBE, repeats);

    std::printf("| operation (8 chains x 32 warps per SM) | warp instructions / cycle / SM | cycles per 128 x 128 accumulators |\n|---|---|---|\n");
    const double rates[] = {pipe_rate<op_i2fp>(sms, repeats, d_cycles, d_sink), pipe_rate<op_iadd>(sms, repeats, d_cycles, d_sink),
                            pipe_rate<op_ffma>(sms, repeats, d_cycles, d_sink), pipe_rate<op_promote_i2fp>(sms, repeats, d_cycles, d_sink),
                            pipe_rate<op_promote_magic>(sms, repeats, d_cycles, d_sink)};
    for (int op = 0; op < 5; ++op) {
        // 16,384 accumulators = 512 warp-elements; a promotion is 3 instructions per element
        const double per_tile = 512.0 * pipe_instructions[op] / rates[op];
        std::printf("| %s | %.2f | %.0f |\n", pipe_op_name[op], rates[op], per_tile);
    }

#if defined(QB_W6_WGMMA)
    if (gpu.cc_major == 9 && gpu.cc_minor == 0) {
        std::printf("\n| two warpgroups per SM, per group of 128 x 128 x 128 MACs (%d groups) | cycles / group / SM |\n|---|---|\n", groups);
        auto run = [&](auto case_c) {
            constexpr int cs = decltype(case_c)::value;
            check(cudaFuncSetAttribute(overlap_kernel<cs>, cudaFuncAttributeMaxDynamicSharedMemorySize, overlap_smem), "smem attribute");
            const double c = measure_cycles(sms, repeats, d_cycles, [&] { overlap_kernel<cs><<<sms, overlap_threads, overlap_smem>>>(groups, 0x2545F491u, d_cycles, d_sink); });
            std::printf("| %s | %.0f |\n", overlap_cases[cs].name, c / groups);
        };
        [&]<int... I>(std::integer_sequence<int, I...>) { (run(std::integral_constant<int, I>{}), ...); }(std::make_integer_sequence<int, overlap_count>{});
        std::printf("\n(int8 dense peak: 4,096 MACs / cycle / SM, so a 128 x 128 x 128 group is 512 cycles of tensor work)\n");
    }
#else
    std::printf("\n(wgmma overlap rows need the sm_90a build: -Dgpu_arch=90a)\n");
#endif
    cudaFree(d_cycles);
    cudaFree(d_sink);
    return 0;
}
