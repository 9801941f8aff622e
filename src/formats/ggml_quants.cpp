#include "formats/ggml_quants.h"

#include "formats/tensor_view.h"

#include <cstring>

// The inner loops run over one block with fixed trip counts and no aliasing (__restrict), so
// GCC -O2/-O3 turns them into SIMD; the per-block scale conversion stays scalar.

namespace qb::ggml {

namespace {
inline float half(uint16_t h) { return fp16_to_f32(h); }

// q4_K / q5_K pack eight 6-bit scales and eight 6-bit mins into 12 bytes: groups 0-3 in the
// low 6 bits of bytes 0-3 (scales) and 4-7 (mins); groups 4-7 keep their low 4 bits in bytes
// 8-11 and their top 2 bits in the spare top bits of bytes 0-7.
// Group j's scale and min, already multiplied by the super-block's d and dmin.
inline void scale_min_k4(int j, const uint8_t *q, float d, float dmin, float *scale, float *min) {
    uint8_t sc, mn;
    if (j < 4) {
        sc = q[j] & 63;
        mn = q[j + 4] & 63;
    } else {
        sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
        mn = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
    }
    *scale = d * static_cast<float>(sc);
    *min = dmin * static_cast<float>(mn);
}
} // namespace

void dequantize_row_q4_0(const block_q4_0 *__restrict x, float *__restrict y, int64_t k) {
    for (int64_t i = 0; i < k / qk4_0; ++i, y += qk4_0) {
        const float d = half(x[i].d);
        for (int j = 0; j < qk4_0 / 2; ++j) {
            const int x0 = (x[i].qs[j] & 0x0F) - 8;
            const int x1 = (x[i].qs[j] >> 4) - 8;
            y[j] = static_cast<float>(x0) * d;
            y[j + qk4_0 / 2] = static_cast<float>(x1) * d;
        }
    }
}

void dequantize_row_q4_1(const block_q4_1 *__restrict x, float *__restrict y, int64_t k) {
    for (int64_t i = 0; i < k / qk4_1; ++i, y += qk4_1) {
        const float d = half(x[i].d);
        const float m = half(x[i].m);
        for (int j = 0; j < qk4_1 / 2; ++j) {
            y[j] = static_cast<float>(x[i].qs[j] & 0x0F) * d + m;
            y[j + qk4_1 / 2] = static_cast<float>(x[i].qs[j] >> 4) * d + m;
        }
    }
}

// The 5-bit formats first unpack the values into int8 (the bit gather does not vectorize
// together with the float math), then scale them in a second, vectorizable loop.
namespace {
inline void unpack_q5(const uint8_t *qh_bytes, const uint8_t *qs, int bias, int8_t *q) {
    uint32_t qh;
    std::memcpy(&qh, qh_bytes, sizeof qh);
    for (int j = 0; j < 16; ++j) {
        // bit j of qh is the 5th bit of value j, bit j+16 that of value j+16
        const int h0 = static_cast<int>(((qh >> j) << 4) & 0x10);
        const int h1 = static_cast<int>((qh >> (j + 12)) & 0x10);
        q[j] = static_cast<int8_t>(((qs[j] & 0x0F) | h0) - bias);
        q[j + 16] = static_cast<int8_t>(((qs[j] >> 4) | h1) - bias);
    }
}
} // namespace

void dequantize_row_q5_0(const block_q5_0 *__restrict x, float *__restrict y, int64_t k) {
    for (int64_t i = 0; i < k / qk5_0; ++i, y += qk5_0) {
        const float d = half(x[i].d);
        int8_t q[qk5_0];
        unpack_q5(x[i].qh, x[i].qs, 16, q);
        for (int j = 0; j < qk5_0; ++j) y[j] = static_cast<float>(q[j]) * d;
    }
}

void dequantize_row_q5_1(const block_q5_1 *__restrict x, float *__restrict y, int64_t k) {
    for (int64_t i = 0; i < k / qk5_1; ++i, y += qk5_1) {
        const float d = half(x[i].d);
        const float m = half(x[i].m);
        int8_t q[qk5_1];
        unpack_q5(x[i].qh, x[i].qs, 0, q);
        for (int j = 0; j < qk5_1; ++j) y[j] = static_cast<float>(q[j]) * d + m;
    }
}

void dequantize_row_q8_0(const block_q8_0 *__restrict x, float *__restrict y, int64_t k) {
    for (int64_t i = 0; i < k / qk8_0; ++i, y += qk8_0) {
        const float d = half(x[i].d);
        for (int j = 0; j < qk8_0; ++j) y[j] = static_cast<float>(x[i].qs[j]) * d;
    }
}

void dequantize_row_q2_k(const block_q2_k *__restrict x, float *__restrict y, int64_t k) {
    for (int64_t i = 0; i < k / qk_k; ++i) {
        const float d = half(x[i].d);
        const float dmin = half(x[i].dmin);
        const uint8_t *q = x[i].qs;
        int is = 0;
        // Two halves of 128 values; each byte of qs holds four 2-bit values, one per shift.
        for (int n = 0; n < qk_k; n += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2) {
                for (int half_ = 0; half_ < 2; ++half_) {
                    const uint8_t sc = x[i].scales[is++];
                    const float dl = d * static_cast<float>(sc & 0xF);
                    const float ml = dmin * static_cast<float>(sc >> 4);
                    const uint8_t *qq = q + 16 * half_;
                    for (int l = 0; l < 16; ++l) *y++ = dl * static_cast<float>((qq[l] >> shift) & 3) - ml;
                }
            }
        }
    }
}

void dequantize_row_q3_k(const block_q3_k *__restrict x, float *__restrict y, int64_t k) {
    constexpr uint32_t kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
    for (int64_t i = 0; i < k / qk_k; ++i) {
        const float d_all = half(x[i].d);
        // 16 6-bit scales: low 4 bits in the nibbles of bytes 0-7, top 2 bits in bytes 8-11.
        uint32_t aux[4];
        std::memcpy(aux, x[i].scales, 12);
        const uint32_t tmp = aux[2];
        aux[2] = ((aux[0] >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
        aux[3] = ((aux[1] >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
        aux[0] = (aux[0] & kmask2) | (((tmp >> 0) & kmask1) << 4);
        aux[1] = (aux[1] & kmask2) | (((tmp >> 2) & kmask1) << 4);
        int8_t scales[16];
        std::memcpy(scales, aux, 16);

        const uint8_t *q = x[i].qs;
        const uint8_t *hm = x[i].hmask;
        uint8_t m = 1;
        int is = 0;
        for (int n = 0; n < qk_k; n += 128, q += 32) {
            for (int shift = 0; shift < 8; shift += 2, m = static_cast<uint8_t>(m << 1)) {
                for (int half_ = 0; half_ < 2; ++half_) {
                    const float dl = d_all * static_cast<float>(scales[is++] - 32);
                    const uint8_t *qq = q + 16 * half_;
                    const uint8_t *hh = hm + 16 * half_;
                    // a clear hmask bit means the value is 4 lower (the stored bit is inverted)
                    for (int l = 0; l < 16; ++l)
                        *y++ = dl * static_cast<float>(((qq[l] >> shift) & 3) - ((hh[l] & m) ? 0 : 4));
                }
            }
        }
    }
}

void dequantize_row_q4_k(const block_q4_k *__restrict x, float *__restrict y, int64_t k) {
    for (int64_t i = 0; i < k / qk_k; ++i) {
        const float d = half(x[i].d);
        const float dmin = half(x[i].dmin);
        const uint8_t *q = x[i].qs;
        // Four chunks of 64 values: 32 bytes, low nibbles first, then high nibbles.
        for (int is = 0; is < 8; is += 2, q += 32) {
            float d1, m1, d2, m2;
            scale_min_k4(is, x[i].scales, d, dmin, &d1, &m1);
            scale_min_k4(is + 1, x[i].scales, d, dmin, &d2, &m2);
            for (int l = 0; l < 32; ++l) y[l] = d1 * static_cast<float>(q[l] & 0xF) - m1;
            for (int l = 0; l < 32; ++l) y[l + 32] = d2 * static_cast<float>(q[l] >> 4) - m2;
            y += 64;
        }
    }
}

void dequantize_row_q5_k(const block_q5_k *__restrict x, float *__restrict y, int64_t k) {
    for (int64_t i = 0; i < k / qk_k; ++i) {
        const float d = half(x[i].d);
        const float dmin = half(x[i].dmin);
        const uint8_t *ql = x[i].qs;
        const uint8_t *qh = x[i].qh;
        uint8_t u1 = 1, u2 = 2; // the qh bit of this chunk's low and high nibbles
        for (int is = 0; is < 8; is += 2, ql += 32) {
            float d1, m1, d2, m2;
            scale_min_k4(is, x[i].scales, d, dmin, &d1, &m1);
            scale_min_k4(is + 1, x[i].scales, d, dmin, &d2, &m2);
            for (int l = 0; l < 32; ++l) y[l] = d1 * static_cast<float>((ql[l] & 0xF) + ((qh[l] & u1) ? 16 : 0)) - m1;
            for (int l = 0; l < 32; ++l) y[l + 32] = d2 * static_cast<float>((ql[l] >> 4) + ((qh[l] & u2) ? 16 : 0)) - m2;
            y += 64;
            u1 = static_cast<uint8_t>(u1 << 2);
            u2 = static_cast<uint8_t>(u2 << 2);
        }
    }
}

void dequantize_row_q6_k(const block_q6_k *__restrict x, float *__restrict y, int64_t k) {
    for (int64_t i = 0; i < k / qk_k; ++i) {
        const float d = half(x[i].d);
        // Unpack to int8 first: in each half of 128 values, byte l of ql/qh feeds values l,
        // l+32, l+64, l+96 (low/high nibble of ql[l] and ql[l+32], 2-bit fields of qh[l]).
        int8_t q[qk_k];
        const uint8_t *ql = x[i].ql;
        const uint8_t *qh = x[i].qh;
        for (int n = 0; n < qk_k; n += 128, ql += 64, qh += 32)
            for (int l = 0; l < 32; ++l) {
                q[n + l] = static_cast<int8_t>(((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32);
                q[n + l + 32] = static_cast<int8_t>(((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32);
                q[n + l + 64] = static_cast<int8_t>(((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32);
                q[n + l + 96] = static_cast<int8_t>(((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32);
            }
        // Value v has scale index v / 16. (d * scale) * q in this order, as ggml.
        for (int g = 0; g < qk_k / 16; ++g) {
            const float ds = d * static_cast<float>(x[i].scales[g]);
            for (int l = 0; l < 16; ++l) y[16 * g + l] = ds * static_cast<float>(q[16 * g + l]);
        }
        y += qk_k;
    }
}

} // namespace qb::ggml
