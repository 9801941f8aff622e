// w6_imma's Hopper path for prefill sizes (sm_90a, m > 32): wgmma.mma_async m64n128k32 s8.
//
// Why a second kernel: the mma.sync path tops out near 200 TOPS at large m, because every
// 128-wide K group needs an int32 -> fp32 promotion per accumulator and mma.sync keeps the issue
// slots busy with both. wgmma runs asynchronously to the warp, so that one consumer warpgroup's
// promotion can run while the other's tensor-core work proceeds. This kernel reaches ~600-700 TOPS
// (results/kernels). Ablations on the H100 (docs/kernels.md) show the tensor work alone at
// ~1,600 TOPS and the data movement alone near cuBLASLt's whole GEMM, but the promotion (3 FP
// instructions per accumulator per group) adds to the tensor time instead of hiding behind it.
// kernels/bench/pipe_probe.cu isolates that on the SM (H200, no memory traffic): two warpgroups'
// wgmmas alone run at the int8 peak (512 cycles per 128 x 128 x 128 group), the promotion alone
// ~500 cycles, and the two together ~950: wgmma and fp32 work on the same SM overlap little, even
// on unrelated registers or with the warpgroups taking turns; only a warpgroup that issues no
// wgmma of its own hides about half of its fp32 time behind another's wgmmas (docs/kernels.md).
// ncu on the full kernel: issue slots 55% busy, L2 45%, ~3,700 warp instructions per tile and K
// group; with 3 warps per scheduler every wait idles it (latency-bound). Orderings, staging and
// unpack placements measured so far were all slower (docs/kernels.md).
//
// Roles (one block = 128 weight rows x 128 tokens, 3 warpgroups; setmaxnreg moves registers from
// the producer to the consumers, which hold 64 int32 + 64 fp32 accumulators each):
//   - producer warpgroup: copies each group's activations (128 tokens x 128 int8, 16-byte cp.async,
//     zero-filled past m; the quantizer already applied wgmma's 128-byte swizzle) and their 128
//     fp32 scales into a 4-stage shared-memory ring; signals a `full` mbarrier per stage.
//   - 2 consumer warpgroups, 64 weight rows each (warp w of a warpgroup = one 16-row tile of the
//     packed layout): weights stream from global memory straight into registers two groups ahead
//     (w6_layout.h gives each lane its fragment words in three coalesced loads), are unpacked to
//     int8 (imma_unpack) and fed as wgmma's register A operand; four k32 wgmmas make the group's
//     exact int32 sums, then acc += (sum * sw / 4) * sx in fp32 (scaled_sum, w6_gemm_kernel.cuh),
//     and the stage is released through an `empty` mbarrier.
// The A-register fragment of wgmma (per warp: rows gid / gid + 8, k 4t + e / 16 + 4t + e) is the
// m16n8k32 one, so the packed weights are the same bytes the decode path reads; the K permutation
// inside a group that packing implies is applied to the activations by the quantizer instead
// (act_quant_int8 with int8_order::wgmma_k, w6_layout.h wgmma_act_pos).
// Integer results are bit-identical to the mma.sync path and flexq_btc (tests/kernels/w6).
#include "w6_imma/w6_imma_wgmma.h"

#include "common/cuda_check.h"
#include "common/device_info.h"
#include "common/sm90_async.cuh"
#if defined(QB_W6_WGMMA)
#include "common/sm90_wgmma.cuh"
#endif
#include "quant_pack/w6_gemm_kernel.cuh" // kernel_params, params_of, word_of
#include "quant_pack/w6_layout.h"

#include <string>

namespace qb::w6::detail {
namespace {

constexpr int wg_tokens = 128;                        // tokens per block: the n128 of the wgmma
constexpr int wg_consumers = 2;                       // consumer warpgroups, 64 weight rows each
constexpr int wg_row_tiles = wg_consumers * 4;        // 16-row tiles per block
constexpr int wg_stages = 4;
constexpr int wg_code_bytes = wg_tokens * group_size; // 16 KB of int8 codes per stage
constexpr int wg_stage_bytes = wg_code_bytes + 1024;  // + 512 B of scales; stages stay 1024-aligned (swizzle atoms)
constexpr int wg_threads = (wg_consumers + 1) * 128;   // + the producer warpgroup
constexpr int wg_smem_bytes = wg_stages * wg_stage_bytes + 1024 /* alignment slack */ + 2 * wg_stages * 8 /* mbarriers */;


#if defined(QB_W6_WGMMA)
using namespace qb::cuda::sm90;

// WITH_GROUP_ACC: the tests' variant that also stores every exact per-group integer.
template <bool WITH_GROUP_ACC>
__global__ void __launch_bounds__(wg_threads, 1) w6_imma_wgmma_kernel(const kernel_params p) {
    extern __shared__ uint8_t smem_raw[];
    const uint32_t raw = smem_addr(smem_raw);
    const uint32_t base = (raw + 1023u) & ~1023u; // swizzle atoms need 1024-byte alignment
    uint8_t *const smem = smem_raw + (base - raw);
    const uint32_t bars = base + wg_stages * wg_stage_bytes; // full[s] at bars + 8s, empty[s] at bars + 8 (S + s)
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const int m0 = blockIdx.x * wg_tokens;
    pdl_launch_dependents(); // (see w6_gemm_kernel)

    if (threadIdx.x == 0) {
        for (int s = 0; s < wg_stages; ++s) {
            mbar_init(bars + 8 * s, 128);                               // the producer's threads
            mbar_init(bars + 8 * (wg_stages + s), wg_consumers * 4);    // one arrival per consumer warp
        }
        mbar_init_fence();
    }
    __syncthreads();

    if (warp >= wg_consumers * 4) {
        // Producer. Activations come from the quantizer launched just before (programmatic
        // dependent launch): only these warps read them, so only they wait.
        asm volatile("setmaxnreg.dec.sync.aligned.u32 40;" ::: "memory");
        pdl_wait();
        const int pw = warp - wg_consumers * 4; // tokens 32 pw .. 32 pw + 31 of the block
        for (int g = 0; g < p.groups; ++g) {
            const int s = g % wg_stages;
            if (g >= wg_stages) mbar_wait(bars + 8 * (wg_stages + s), ((g / wg_stages) - 1) & 1);
            const uint32_t stage = base + s * wg_stage_bytes;
#pragma unroll
            for (int i = 0; i < 8; ++i) {
                const int idx = lane + 32 * i, r = 32 * pw + (idx >> 3), c = idx & 7; // token r, 16-byte chunk c
                const int tok = m0 + r;
                const int8_t *src = static_cast<const int8_t *>(p.act) + size_t(tok < p.m ? tok : p.m - 1) * p.k + size_t(g) * group_size + 16 * c;
                cp_async16(stage + r * group_size + (c << 4), src, tok < p.m ? 16u : 0u); // the quantizer swizzled
            }
            {
                const int r = 32 * pw + lane, tok = m0 + r;
                cp_async4(stage + wg_code_bytes + 4 * r, p.as + size_t(g) * p.m + (tok < p.m ? tok : p.m - 1), tok < p.m ? 4u : 0u);
            }
            cp_async_arrive(bars + 8 * s);
        }
        return;
    }

    // Consumers.
    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;" ::: "memory");
    const int gid = lane >> 2, t = lane & 3;
    const int nt = blockIdx.y * wg_row_tiles + warp; // this warp's 16-row tile
    const bool rows_ok = nt < p.row_tiles;
    const uint4 *wsrc = p.w + size_t(rows_ok ? nt : 0) * p.groups * (tile_bytes / 16) + lane;
    const __half2 *ssrc = p.ws + size_t(rows_ok ? nt : 0) * p.groups * 8 + gid;
    uint4 wb[2][3];
    __half2 sb[2];
    auto load_w = [&](int slot, int g) {
        if (rows_ok) {
            const uint4 *src = wsrc + size_t(g) * (tile_bytes / 16);
#pragma unroll
            for (int j = 0; j < 3; ++j) wb[slot][j] = __ldg(src + 32 * j);
            sb[slot] = __ldg(ssrc + size_t(g) * 8);
        } else {
#pragma unroll
            for (int j = 0; j < 3; ++j) wb[slot][j] = make_uint4(0, 0, 0, 0);
            sb[slot] = __floats2half2_rn(0.f, 0.f);
        }
    };
    load_w(0, 0);
    if (p.groups > 1) load_w(1, 1);

    // Output row and token of accumulator e (the wgmma D fragment: rows gid / gid + 8, tokens
    // 8i + 2t, 8i + 2t + 1).
    auto row_of = [&](int e) { return nt * row_tile + gid + 8 * ((e >> 1) & 1); };
    auto token_of = [&](int e) { return m0 + 8 * (e >> 2) + 2 * t + (e & 1); };
    float accf[64];
#pragma unroll
    for (int i = 0; i < 64; ++i) accf[i] = 0.f;
    int32_t acci[64];

    auto step = [&](auto slot_c, int g) {
        constexpr int slot = decltype(slot_c)::value;
        const int s = g % wg_stages;
        uint32_t frag[4][4];
        imma_unpack(word_of<0>(wb[slot]), word_of<1>(wb[slot]), word_of<2>(wb[slot]), frag[0]);
        imma_unpack(word_of<3>(wb[slot]), word_of<4>(wb[slot]), word_of<5>(wb[slot]), frag[1]);
        imma_unpack(word_of<6>(wb[slot]), word_of<7>(wb[slot]), word_of<8>(wb[slot]), frag[2]);
        imma_unpack(word_of<9>(wb[slot]), word_of<10>(wb[slot]), word_of<11>(wb[slot]), frag[3]);
        const float2 sw = __half22float2(sb[slot]);
        const float sw0 = 0.25f * sw.x, sw1 = 0.25f * sw.y; // bytes held 4q: the sums are 4x (exact)
        const float nb0 = -promote_magic * sw0, nb1 = -promote_magic * sw1; // exact: sw has 11 significant bits
        mbar_wait(bars + 8 * s, (g / wg_stages) & 1);
        asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); // cp.async wrote through the generic proxy
        const uint64_t desc = smem_desc_sw128(base + s * wg_stage_bytes);
        reg_fence(acci);
        wgmma_fence();
        wgmma_m64n128k32_s8(acci, frag[0], desc + 0, 0);
        wgmma_m64n128k32_s8(acci, frag[1], desc + 2, 1); // + 32 bytes: the next k32 slab
        wgmma_m64n128k32_s8(acci, frag[2], desc + 4, 1);
        wgmma_m64n128k32_s8(acci, frag[3], desc + 6, 1);
        wgmma_commit();
        if (g + 2 < p.groups) load_w(slot, g + 2); // next weights stream while the tensor cores run
        wgmma_wait_all();
        reg_fence(acci);
        reg_keep(frag);
        const float *sx = reinterpret_cast<const float *>(smem + s * wg_stage_bytes + wg_code_bytes) + 2 * t;
#pragma unroll
        for (int i = 0; i < 16; ++i) {
            const float2 x = *reinterpret_cast<const float2 *>(sx + 8 * i); // tokens 8i + 2t, 8i + 2t + 1
            accf[4 * i + 0] = fmaf(scaled_sum(acci[4 * i + 0], sw0, nb0), x.x, accf[4 * i + 0]);
            accf[4 * i + 1] = fmaf(scaled_sum(acci[4 * i + 1], sw0, nb0), x.y, accf[4 * i + 1]);
            accf[4 * i + 2] = fmaf(scaled_sum(acci[4 * i + 2], sw1, nb1), x.x, accf[4 * i + 2]);
            accf[4 * i + 3] = fmaf(scaled_sum(acci[4 * i + 3], sw1, nb1), x.y, accf[4 * i + 3]);
        }
        __syncwarp();
        if (lane == 0) mbar_arrive(bars + 8 * (wg_stages + s));
        if constexpr (WITH_GROUP_ACC) {
#pragma unroll
            for (int e = 0; e < 64; ++e) {
                const int n = row_of(e), m = token_of(e);
                if (n < p.n && m < p.m) p.group_acc[(size_t(m) * p.n + n) * p.groups + g] = acci[e] >> 2;
            }
        }
    };
    for (int g = 0; g < p.groups; g += 2) {
        step(std::integral_constant<int, 0>{}, g);
        if (g + 1 < p.groups) step(std::integral_constant<int, 1>{}, g + 1);
    }

#pragma unroll
    for (int e = 0; e < 64; ++e) {
        const int n = row_of(e), m = token_of(e);
        if (n < p.n && m < p.m) p.out[size_t(m) * p.n + n] = __float2half_rn(accf[e]);
    }
}
#endif // QB_W6_WGMMA

} // namespace

bool wgmma_available() {
#if defined(QB_W6_WGMMA)
    return qb::cuda::current_device_cc() == 90;
#else
    return false;
#endif
}

status w6_imma_wgmma_launch(const gemm_args &a, cudaStream_t stream) {
#if defined(QB_W6_WGMMA)
    const kernel_params p = params_of(a);
    auto *kernel = p.group_acc ? w6_imma_wgmma_kernel<true> : w6_imma_wgmma_kernel<false>;
    static const cudaError_t attr_err = [] {
        const cudaError_t a = cudaFuncSetAttribute(w6_imma_wgmma_kernel<true>, cudaFuncAttributeMaxDynamicSharedMemorySize, wg_smem_bytes);
        const cudaError_t b = cudaFuncSetAttribute(w6_imma_wgmma_kernel<false>, cudaFuncAttributeMaxDynamicSharedMemorySize, wg_smem_bytes);
        return a != cudaSuccess ? a : b;
    }();
    QB_CUDA_TRY(attr_err);
    const unsigned gx = unsigned((a.m + wg_tokens - 1) / wg_tokens);
    const unsigned gy = unsigned((p.row_tiles + wg_row_tiles - 1) / wg_row_tiles);
    if (gy > 65535u) return status::failure(status_code::unsupported_shape, "n too large for the grid (n=" + std::to_string(a.n) + ")");
    cudaLaunchConfig_t lc = {};
    lc.gridDim = dim3(gx, gy, 1);
    lc.blockDim = dim3(wg_threads);
    lc.dynamicSmemBytes = wg_smem_bytes;
    lc.stream = stream;
    cudaLaunchAttribute attr[1];
    attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    attr[0].val.programmaticStreamSerializationAllowed = 1;
    lc.attrs = attr;
    lc.numAttrs = a.pdl ? 1 : 0;
    QB_CUDA_TRY(cudaLaunchKernelEx(&lc, kernel, p));
    QB_CUDA_TRY_LAUNCH();
    return status::success();
#else
    (void)a, (void)stream;
    return status::failure(status_code::unsupported_option, "w6_imma: the wgmma path needs a build for sm_90a (-Dgpu_arch=90a)");
#endif
}

} // namespace qb::w6::detail
