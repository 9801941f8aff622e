// Hopper (sm_90) asynchronous-copy and mbarrier primitives shared by the kernels that stage data
// through shared memory with a producer/consumer ring (w6_imma's wgmma path, the bandwidth probe
// of the benchmark). Include from a .cu only; call the mbarrier and bulk-copy functions only from
// code compiled for sm_90 (`#if __CUDA_ARCH__ >= 900` or an sm_90a-only translation unit), and
// cp.async from sm_80 on: the PTX does not exist on older targets.
#pragma once
#include <cstdint>

namespace qb::cuda::sm90 {

// Programmatic dependent launch (griddepcontrol, sm_90). A kernel launched with the
// programmatic-stream-serialization attribute may start before the kernel ahead of it in the stream
// has finished, so it must call pdl_wait() (which returns once that kernel has completed and its
// writes are visible) before it reads what that kernel writes or writes what it reads (a reused
// buffer); what neither touches, such as weights, it may read before. pdl_launch_dependents() lets the kernel behind
// this one (if that one is launched with the attribute) be scheduled once every block of this grid
// has called it or exited: its blocks then fill the SMs this grid's last wave leaves idle and start
// on their independent inputs (weights) while this grid drains. Both are no-ops for kernels
// launched without the attribute.
__device__ __forceinline__ void pdl_wait() { asm volatile("griddepcontrol.wait;" ::: "memory"); }
__device__ __forceinline__ void pdl_launch_dependents() { asm volatile("griddepcontrol.launch_dependents;" ::: "memory"); }
// How a kernel that reads what the kernel ahead writes starts: first let the kernel behind it be
// scheduled (a GEMM that streams its weights meanwhile), then wait for the one ahead before touching
// anything (it writes this kernel's input and may still read the buffers this one writes).
__device__ __forceinline__ void pdl_enter() {
    pdl_launch_dependents();
    pdl_wait();
}

__device__ __forceinline__ uint32_t smem_addr(const void *p) { return uint32_t(__cvta_generic_to_shared(p)); }

__device__ __forceinline__ void mbar_init(uint32_t bar, int count) {
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" ::"r"(bar), "r"(count) : "memory");
}
// Makes the initialized barriers visible to the async proxy (bulk copies, cp.async arrivals).
__device__ __forceinline__ void mbar_init_fence() { asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory"); }
__device__ __forceinline__ void mbar_arrive(uint32_t bar) { asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" ::"r"(bar) : "memory"); }
// One arrival that also announces `bytes` of bulk-copy transactions the phase must wait for.
__device__ __forceinline__ void mbar_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
    uint32_t done = 0;
    do {
        asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}"
                     : "=r"(done)
                     : "r"(bar), "r"(parity)
                     : "memory");
    } while (!done);
}
// 16 (or 4) bytes global -> shared; bytes past `src_bytes` are zero-filled.
__device__ __forceinline__ void cp_async16(uint32_t dst, const void *src, uint32_t src_bytes) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(src_bytes) : "memory");
}
__device__ __forceinline__ void cp_async4(uint32_t dst, const void *src, uint32_t src_bytes) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;" ::"r"(dst), "l"(src), "r"(src_bytes) : "memory");
}
// The 16-byte copy for a stream read once: not kept in L1 (.cg), with a 256-byte L2 prefetch.
__device__ __forceinline__ void cp_async16_stream(uint32_t dst, const void *src, uint32_t src_bytes) {
    asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16, %2;" ::"r"(dst), "l"(src), "r"(src_bytes) : "memory");
}
// Closes this thread's current group of cp.asyncs; waits until at most N of its groups are pending.
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;" ::"n"(N) : "memory"); }
// The mbarrier receives this thread's arrival once all its earlier cp.asyncs have landed.
__device__ __forceinline__ void cp_async_arrive(uint32_t bar) { asm volatile("cp.async.mbarrier.arrive.noinc.shared::cta.b64 [%0];" ::"r"(bar) : "memory"); }
// One bulk (TMA, non-tensor) copy of `bytes` (multiple of 16, 16-byte aligned both sides)
// global -> shared, completing as transactions on `bar`; not through L1, default L2 policy (no cache hint).
__device__ __forceinline__ void bulk_copy_g2s(uint32_t dst, const void *src, uint32_t bytes, uint32_t bar) {
    asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::"r"(dst), "l"(src), "r"(bytes), "r"(bar)
                 : "memory");
}
// Orders this thread's earlier generic-proxy accesses to shared memory before later async-proxy
// writes (a ring stage read by threads, then refilled by a bulk copy).
__device__ __forceinline__ void fence_proxy_async_smem() { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }

} // namespace qb::cuda::sm90
