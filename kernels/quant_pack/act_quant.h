// Fused activation quantization on the GPU: fp16 x [M, K] -> per-token symmetric int6/int8 codes
// and fp32 scales, written in the layout the GEMM reads (w6_layout.h); bit-exact with
// quantize_acts_ref (same fp32 operations: absmax, absmax / qmax, rint(x / scale), clamp).
//   act_quant_int8:   group 128 -> int8 [M, K] + scales [K/128][M]   (w6_imma; `order` wgmma_k for
//                     its Hopper path, w6_imma_uses_wgmma: bytes permuted inside each group)
//   act_quant_planes: group 128 -> planes [M][K/128][4][bits] + scales [K/128][M]  (flexq_btc)
//   act_quant_token:  one group per token -> int8 [M, K] + scales [M]  (cuBLASLt W8A8 baseline)
// Each kernel lets the next kernel in the stream start early (programmatic dependent launch):
// a GEMM launched with w6 `pdl` streams its weights while this kernel still runs. With `pdl` the
// quantizer itself is launched so (the previous layer's kernel may still drain); it waits for that
// kernel before reading x or writing its outputs, so any kernel may precede it.
// Test: tests/kernels/w6/test_w6_kernels.cpp (gpu); bench: kernels/bench/bench_kernels.cpp.
#pragma once
#include "core/status.h"

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace qb::w6 {

// Where each code of a 128 group goes: natural (k), or wgmma_k (w6_layout.h wgmma_act_pos(k)).
enum class int8_order { natural, wgmma_k };

// The activation widths every quantizer here writes, 6 or 8 bits; otherwise the reason, naming `who`
// (act_quant_* and the producers of producer_quant.h check with it).
status check_act_bits(const char *who, int bits);

status act_quant_int8(const __half *x, int m, int k, int bits, int8_t *q, float *scales, cudaStream_t stream,
                      int8_order order = int8_order::natural, bool pdl = false);
status act_quant_planes(const __half *x, int m, int k, int bits, uint32_t *planes, float *scales, cudaStream_t stream, bool pdl = false);
status act_quant_token(const __half *x, int m, int k, int8_t *q, float *scales, cudaStream_t stream, bool pdl = false);

// Fills a device buffer with pseudo-random bytes (a hash of the index and seed): benchmark data
// for shapes too large to generate and copy from the host.
status fill_random_bytes(void *dst, size_t bytes, uint32_t seed, cudaStream_t stream);
// Fills fp16 values uniform in [-range, range] (never exactly zero).
status fill_random_half(__half *dst, size_t count, float range, uint32_t seed, cudaStream_t stream);
// Fills positive fp16 scales in [lo, hi].
status fill_random_scales(__half *dst, size_t count, float lo, float hi, uint32_t seed, cudaStream_t stream);

// Reads `bytes` (a multiple of 16) so that the L2 afterwards holds only clean lines of this buffer:
// the cold-L2 step of the benchmarks (a memset would leave dirty lines whose write-back lands in
// the timed region). `sink` gets one word so that the reads are not optimized away.
status l2_flush_read(const void *buffer, size_t bytes, uint32_t *sink, cudaStream_t stream);

} // namespace qb::w6
