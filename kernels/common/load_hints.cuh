// Global loads with cache hints, shared by kernels that stream data read once (include from .cu).
#pragma once
#include <cstdint>

namespace qb::cuda {

// 16 bytes through the read-only path, not kept in L1, with a 256-byte L2 prefetch: for a
// stream each byte of which one warp reads once (decode weights, the bandwidth probe).
__device__ __forceinline__ uint4 ld_stream(const uint4 *p) {
    uint4 v;
    asm volatile("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0,%1,%2,%3}, [%4];"
                 : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
                 : "l"(p));
    return v;
}

} // namespace qb::cuda
