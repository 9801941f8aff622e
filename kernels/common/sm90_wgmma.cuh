// Hopper (sm_90a) warpgroup MMA primitives: the int8 wgmma that w6_imma's prefill path issues and
// the register / proxy fences around it. Shared with the pipe probe of the benchmark
// (kernels/bench/pipe_probe.cu), which measures the same instruction in isolation. Include only
// from code compiled for sm_90a: wgmma does not exist on sm_90 or older targets.
#pragma once
#include <cstdint>

namespace qb::cuda::sm90 {

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait_all() { asm volatile("wgmma.wait_group.sync.aligned 0;" ::: "memory"); }
// Keeps the compiler from moving reads of (or reusing) registers an in-flight wgmma owns.
__device__ __forceinline__ void reg_fence(int32_t &r) { asm volatile("" : "+r"(r)::"memory"); }
__device__ __forceinline__ void reg_keep(uint32_t r) { asm volatile("" ::"r"(r) : "memory"); }
// The same over a wgmma's 64 accumulators and over its four k32 A fragments.
__device__ __forceinline__ void reg_fence(int32_t (&d)[64]) {
#pragma unroll
    for (int i = 0; i < 64; ++i) reg_fence(d[i]);
}
__device__ __forceinline__ void reg_keep(const uint32_t (&frag)[4][4]) {
#pragma unroll
    for (int i = 0; i < 4; ++i)
#pragma unroll
        for (int j = 0; j < 4; ++j) reg_keep(frag[i][j]);
}

// Shared-memory matrix descriptor: K-major, 128-byte swizzle, 8-row core-matrix groups 1024 B apart.
__device__ __forceinline__ uint64_t smem_desc_sw128(uint32_t addr) {
    return uint64_t((addr & 0x3FFFF) >> 4) | (uint64_t(1) << 16) | (uint64_t(1024 >> 4) << 32) | (uint64_t(1) << 62);
}

// D (+)= A x B for a 64 x 128 x 32 int8 slab: A (64 weight rows) from registers, B (128 tokens)
// from shared memory through its descriptor; `accumulate` 0 starts the integer sums afresh.
__device__ __forceinline__ void wgmma_m64n128k32_s8(int32_t (&d)[64], const uint32_t (&a)[4], uint64_t desc_b, int accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k32.s32.s8.s8 "
                 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}, "
                 "{%64,%65,%66,%67}, %68, p;\n}"
                 : "+r"(d[0]), "+r"(d[1]), "+r"(d[2]), "+r"(d[3]), "+r"(d[4]), "+r"(d[5]), "+r"(d[6]), "+r"(d[7]), "+r"(d[8]), "+r"(d[9]), "+r"(d[10]), "+r"(d[11]), "+r"(d[12]), "+r"(d[13]), "+r"(d[14]), "+r"(d[15]), "+r"(d[16]), "+r"(d[17]), "+r"(d[18]), "+r"(d[19]), "+r"(d[20]), "+r"(d[21]), "+r"(d[22]), "+r"(d[23]), "+r"(d[24]), "+r"(d[25]), "+r"(d[26]), "+r"(d[27]), "+r"(d[28]), "+r"(d[29]), "+r"(d[30]), "+r"(d[31]), "+r"(d[32]), "+r"(d[33]), "+r"(d[34]), "+r"(d[35]), "+r"(d[36]), "+r"(d[37]), "+r"(d[38]), "+r"(d[39]), "+r"(d[40]), "+r"(d[41]), "+r"(d[42]), "+r"(d[43]), "+r"(d[44]), "+r"(d[45]), "+r"(d[46]), "+r"(d[47]), "+r"(d[48]), "+r"(d[49]), "+r"(d[50]), "+r"(d[51]), "+r"(d[52]), "+r"(d[53]), "+r"(d[54]), "+r"(d[55]), "+r"(d[56]), "+r"(d[57]), "+r"(d[58]), "+r"(d[59]), "+r"(d[60]), "+r"(d[61]), "+r"(d[62]), "+r"(d[63])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(accumulate)
                 : "memory");
}

} // namespace qb::cuda::sm90
