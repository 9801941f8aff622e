#include "flexq_btc/flexq_btc.h"

#include "quant_pack/w6_gemm_kernel.cuh"

namespace qb::w6 {

static_assert(btc_schedule<6>{}.count == 21, "W6A6: 21 k256 multiplies cover the 36 plane pairs");

status flexq_btc_supports(int m, int n, int k, int a_bits) {
    if (auto st = check_w6_shape("flexq_btc", m, n, k); !st) return st;
    if (a_bits != 6 && a_bits != 8)
        return status::failure(status_code::unsupported_option,
                               "flexq_btc: a_bits must be 6 or 8 (a_bits=" + std::to_string(a_bits) + ")");
    return status::success();
}

status flexq_btc_run(const gemm_args &args, cudaStream_t stream) {
    if (auto st = flexq_btc_supports(args.m, args.n, args.k, args.a_bits); !st) return st;
    if (auto st = detail::check_args("flexq_btc", args); !st) return st;
    if (args.a_bits == 6) return detail::launch_by_m<detail::btc_mode<6>>(args, stream);
    return detail::launch_by_m<detail::btc_mode<8>>(args, stream);
}

} // namespace qb::w6
