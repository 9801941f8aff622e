#include "w6_imma/w6_imma.h"

#include "quant_pack/w6_gemm_kernel.cuh"
#include "w6_imma/w6_imma_wgmma.h"

namespace qb::w6 {

status w6_imma_supports(int m, int n, int k, int a_bits) {
    if (auto st = check_w6_shape("w6_imma", m, n, k); !st) return st;
    if (a_bits < 2 || a_bits > 8)
        return status::failure(status_code::unsupported_option, "w6_imma: a_bits must be in [2, 8] (a_bits=" + std::to_string(a_bits) + ")");
    return status::success();
}

status w6_imma_run(const gemm_args &args, cudaStream_t stream) {
    if (auto st = w6_imma_supports(args.m, args.n, args.k, args.a_bits); !st) return st;
    if (auto st = detail::check_args("w6_imma", args); !st) return st;
    if (args.act_fp16) {
        if (auto st = w6_imma_fused_supports(args.m, args.a_bits); !st) return st;
        using detail::launch_decode8, detail::imma_fused_mode;
        if (args.m == 1) return launch_decode8<imma_fused_mode<1>>(args, stream);
        if (args.m == 2) return launch_decode8<imma_fused_mode<2>>(args, stream);
        if (args.m <= 4) return launch_decode8<imma_fused_mode<4>>(args, stream);
        return launch_decode8<imma_fused_mode<8>>(args, stream);
    }
    if (w6_imma_uses_wgmma(args.m, args.allow_wgmma)) return detail::w6_imma_wgmma_launch(args, stream);
    return detail::launch_by_m<detail::imma_mode>(args, stream);
}

status w6_imma_fused_supports(int m, int a_bits) {
    if (m < 1 || m > 8)
        return status::failure(status_code::unsupported_shape,
                               "w6_imma: the fused activation quantizer serves m <= 8 only (m=" + std::to_string(m) + "); quantize with act_quant_int8");
    if (a_bits != 6 && a_bits != 8)
        return status::failure(status_code::unsupported_option,
                               "w6_imma: the fused activation quantizer writes 6- or 8-bit codes (a_bits=" + std::to_string(a_bits) + ")");
    return status::success();
}

// Up to 32 tokens the mma.sync decode / mid configurations win (they stream the weights once);
// from 33 on, a half-empty 128-token wgmma tile is already faster than mid32 on 16 of the 21
// benchmark shapes at m = 64 (results/kernels/h100_summary.csv, m = 64 vs 128).
bool w6_imma_uses_wgmma(int m, bool allow_wgmma) { return allow_wgmma && m > 32 && detail::wgmma_available(); }

int decode8_k_split(int m, int n, int groups, int sm_count) {
    const long long tiles = row_tiles(n), resident_warps = 24LL * sm_count;
    for (int ks : {8, 6, 4, 3, 2})
        if (tiles * ks <= resident_warps && (ks <= 4 || groups >= decode8_min_groups_per_warp * ks)) return ks;
    return m == 1 && tiles <= resident_warps ? 1 : 4;
}

int decode8_row_tiles_per_warp(int m, int n, int sm_count) {
    const long long tiles = row_tiles(n);
    const bool split_fits = tiles * 2 <= 24LL * sm_count; // decode8_k_split finds a resident split
    return m >= 2 && !split_fits && (tiles + 1) / 2 * 2 <= 16LL * sm_count ? 2 : 1;
}

const char *w6_config_name(int m) { return m <= 8 ? "decode8" : m <= 32 ? "decode16" : m <= 64 ? "mid32" : "tiled"; }

} // namespace qb::w6
