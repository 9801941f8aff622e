#include "quant_pack/w6_ref.h"
#include "quant_pack/w6_layout.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

namespace qb::w6 {

uint16_t float_to_half(float f) {
    uint32_t x;
    std::memcpy(&x, &f, 4);
    const uint32_t sign = (x >> 16) & 0x8000u;
    const uint32_t exp = (x >> 23) & 0xFFu;
    uint32_t mant = x & 0x7FFFFFu;
    if (exp == 0xFF) return uint16_t(sign | 0x7C00u | (mant ? 0x200u : 0u)); // inf / nan
    int e = int(exp) - 127 + 15;
    if (e >= 31) return uint16_t(sign | 0x7C00u); // overflow -> inf
    if (e <= 0) {
        // Subnormal half (or zero): shift the full significand, round half to even.
        if (e < -10) return uint16_t(sign);
        mant |= 0x800000u;
        const int shift = 14 - e; // 24-bit significand -> 10-bit field at exponent 0
        uint32_t h = mant >> shift;
        const uint32_t rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (h & 1u))) ++h;
        return uint16_t(sign | h);
    }
    uint32_t h = (uint32_t(e) << 10) | (mant >> 13);
    const uint32_t rem = mant & 0x1FFFu;
    if (rem > 0x1000u || (rem == 0x1000u && (h & 1u))) ++h; // may carry into the exponent: still right
    return uint16_t(sign | h);
}

float half_to_float(uint16_t h) {
    const uint32_t sign = uint32_t(h & 0x8000u) << 16;
    const uint32_t exp = (h >> 10) & 0x1Fu, mant = h & 0x3FFu;
    uint32_t x;
    if (exp == 0) {
        if (mant == 0) {
            x = sign;
        } else { // subnormal: value = mant * 2^-24
            float v = std::ldexp(float(mant), -24);
            return sign ? -v : v;
        }
    } else if (exp == 31) {
        x = sign | 0x7F800000u | (mant << 13);
    } else {
        x = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    }
    float f;
    std::memcpy(&f, &x, 4);
    return f;
}

quantized_weights quantize_weights_ref(const float *w, int n, int k) {
    if (k % group_size != 0) throw std::invalid_argument("quantize_weights_ref: k=" + std::to_string(k) + " is not a multiple of 128");
    quantized_weights out;
    out.n = n;
    out.k = k;
    const int groups = k / group_size;
    out.q.resize(size_t(n) * k);
    out.scales.resize(size_t(n) * groups);
    for (int r = 0; r < n; ++r)
        for (int g = 0; g < groups; ++g) {
            const float *src = w + size_t(r) * k + size_t(g) * group_size;
            float amax = 0.f;
            for (int i = 0; i < group_size; ++i) amax = std::max(amax, std::fabs(src[i]));
            const float s = std::min(std::max(amax / 31.0f, 1e-5f), 1e4f);
            const uint16_t sh = float_to_half(s);
            out.scales[size_t(r) * groups + g] = sh;
            const float sf = half_to_float(sh);
            for (int i = 0; i < group_size; ++i) {
                const float v = std::nearbyint(src[i] / sf);
                out.q[size_t(r) * k + size_t(g) * group_size + i] = int8_t(std::min(31.f, std::max(-32.f, v)));
            }
        }
    return out;
}

quantized_acts quantize_acts_ref(const uint16_t *x, int m, int k, int bits, int group) {
    if (bits != 6 && bits != 8) throw std::invalid_argument("quantize_acts_ref: bits must be 6 or 8, got " + std::to_string(bits));
    if (group <= 0 || k % group != 0) throw std::invalid_argument("quantize_acts_ref: group must divide k");
    quantized_acts out;
    out.m = m;
    out.k = k;
    out.bits = bits;
    out.group = group;
    const int groups = k / group;
    const float qmax = bits == 6 ? 31.f : 127.f;
    out.q.resize(size_t(m) * k);
    out.scales.resize(size_t(groups) * m);
    for (int r = 0; r < m; ++r)
        for (int g = 0; g < groups; ++g) {
            const uint16_t *src = x + size_t(r) * k + size_t(g) * group;
            float amax = 0.f;
            for (int i = 0; i < group; ++i) amax = std::max(amax, std::fabs(half_to_float(src[i])));
            const float s = amax / qmax;
            out.scales[size_t(g) * m + r] = s;
            for (int i = 0; i < group; ++i) {
                float v = 0.f;
                if (s > 0.f) v = std::min(qmax, std::max(-qmax - 1.f, std::nearbyint(half_to_float(src[i]) / s)));
                out.q[size_t(r) * k + size_t(g) * group + i] = int8_t(v);
            }
        }
    return out;
}

namespace {

// Scales in tile order: [NT][G][8] pairs (row i, row i + 8); padded rows get scale 0.
std::vector<uint16_t> pack_scales(const quantized_weights &w) {
    const int nt = row_tiles(w.n), groups = w.k / group_size;
    std::vector<uint16_t> s(size_t(nt) * groups * row_tile, 0);
    for (int t = 0; t < nt; ++t)
        for (int g = 0; g < groups; ++g)
            for (int i = 0; i < row_tile; ++i) {
                const int row = t * row_tile + i;
                const size_t dst = (size_t(t) * groups + g) * row_tile + size_t(i % 8) * 2 + i / 8;
                s[dst] = row < w.n ? w.scales[size_t(row) * groups + g] : 0;
            }
    return s;
}

int8_t code_at(const quantized_weights &w, int row, int k) { return row < w.n ? w.q[size_t(row) * w.k + k] : 0; }

// Packs w tile by tile: fill(tile words, row tile t, group g, lane) writes one lane's words.
template <class Fill>
packed_weights pack_tiles(const quantized_weights &w, Fill fill) {
    packed_weights p;
    p.n = w.n;
    p.k = w.k;
    const int nt = row_tiles(w.n), groups = w.k / group_size;
    p.data.assign(size_t(nt) * groups * tile_bytes, 0);
    auto *words = reinterpret_cast<uint32_t *>(p.data.data());
    for (int t = 0; t < nt; ++t)
        for (int g = 0; g < groups; ++g)
            for (int lane = 0; lane < 32; ++lane) fill(words + (size_t(t) * groups + g) * (tile_bytes / 4), t, g, lane);
    p.scales = pack_scales(w);
    return p;
}

} // namespace

packed_weights pack_weights_imma(const quantized_weights &w) {
    return pack_tiles(w, [&](uint32_t *tile, int t, int g, int lane) {
        const int gid = lane / 4, tq = lane % 4;
        for (int kk = 0; kk < 4; ++kk) {
            uint32_t l0 = 0, l1 = 0, h = 0;
            for (int e = 0; e < 4; ++e) {
                uint32_t c[4];
                for (int reg = 0; reg < 4; ++reg) {
                    const int row = t * row_tile + imma_row_of(gid, reg);
                    const int kin = g * group_size + imma_k_of(tq, kk, reg, e);
                    c[reg] = uint32_t(code_at(w, row, kin)) & 63u;
                }
                l0 |= ((c[0] & 15u) | ((c[1] & 15u) << 4)) << (8 * e);
                l1 |= ((c[2] & 15u) | ((c[3] & 15u) << 4)) << (8 * e);
                h |= ((c[0] >> 4) | ((c[1] >> 4) << 2) | ((c[2] >> 4) << 4) | ((c[3] >> 4) << 6)) << (8 * e);
            }
            tile[tile_word_index(lane, 3 * kk)] = l0;
            tile[tile_word_index(lane, 3 * kk + 1)] = l1;
            tile[tile_word_index(lane, 3 * kk + 2)] = h;
        }
    });
}

quantized_weights unpack_weights_imma(const packed_weights &p) {
    quantized_weights w;
    w.n = p.n;
    w.k = p.k;
    const int nt = row_tiles(p.n), groups = p.k / group_size;
    w.q.assign(size_t(p.n) * p.k, 0);
    w.scales.assign(size_t(p.n) * groups, 0);
    const auto *words = reinterpret_cast<const uint32_t *>(p.data.data());
    for (int t = 0; t < nt; ++t)
        for (int g = 0; g < groups; ++g) {
            const uint32_t *tile = words + (size_t(t) * groups + g) * (tile_bytes / 4);
            for (int lane = 0; lane < 32; ++lane) {
                const int gid = lane / 4, tq = lane % 4;
                for (int kk = 0; kk < 4; ++kk) {
                    uint32_t a[4];
                    imma_unpack(tile[tile_word_index(lane, 3 * kk)], tile[tile_word_index(lane, 3 * kk + 1)],
                                tile[tile_word_index(lane, 3 * kk + 2)], a);
                    for (int reg = 0; reg < 4; ++reg)
                        for (int e = 0; e < 4; ++e) {
                            const int row = t * row_tile + imma_row_of(gid, reg);
                            if (row >= p.n) continue;
                            const int8_t b = int8_t(uint8_t(a[reg] >> (8 * e)));
                            w.q[size_t(row) * p.k + g * group_size + imma_k_of(tq, kk, reg, e)] = int8_t(b / 4);
                        }
                }
            }
            for (int i = 0; i < row_tile; ++i) {
                const int row = t * row_tile + i;
                if (row < p.n) w.scales[size_t(row) * groups + g] = p.scales[(size_t(t) * groups + g) * row_tile + size_t(i % 8) * 2 + i / 8];
            }
        }
    return w;
}

packed_weights pack_weights_btc(const quantized_weights &w) {
    return pack_tiles(w, [&](uint32_t *tile, int t, int g, int lane) {
        const int gid = lane / 4, tq = lane % 4;
        for (int plane = 0; plane < weight_bits; ++plane)
            for (int h = 0; h < 2; ++h) {
                uint32_t word = 0;
                for (int b = 0; b < 32; ++b) {
                    const int8_t q = code_at(w, t * row_tile + gid + 8 * h, g * group_size + 32 * tq + b);
                    word |= ((uint32_t(uint8_t(q)) >> plane) & 1u) << b;
                }
                tile[tile_word_index(lane, 2 * plane + h)] = word;
            }
    });
}

std::vector<int8_t> order_acts_wgmma_ref(const int8_t *q, int m, int k) {
    std::vector<int8_t> out(size_t(m) * k);
    for (size_t row = 0; row < size_t(m); ++row)
        for (int i = 0; i < k; ++i) out[row * k + (i / group_size) * group_size + wgmma_act_pos(i % group_size, int(row))] = q[row * k + i];
    return out;
}

std::vector<uint32_t> pack_act_planes_ref(const int8_t *q, int m, int k, int bits) {
    const int groups = k / group_size;
    std::vector<uint32_t> out(size_t(m) * groups * 4 * bits, 0);
    for (int r = 0; r < m; ++r)
        for (int g = 0; g < groups; ++g)
            for (int t = 0; t < 4; ++t)
                for (int i = 0; i < bits; ++i) {
                    uint32_t word = 0;
                    for (int b = 0; b < 32; ++b)
                        word |= ((uint32_t(uint8_t(q[size_t(r) * k + g * group_size + 32 * t + b])) >> i) & 1u) << b;
                    out[((size_t(r) * groups + g) * 4 + t) * bits + i] = word;
                }
    return out;
}

std::vector<int32_t> gemm_group_acc_ref(const int8_t *qa, const int8_t *qw, int m, int n, int k) {
    const int groups = k / group_size;
    std::vector<int32_t> acc(size_t(m) * n * groups);
    for (int r = 0; r < m; ++r)
        for (int c = 0; c < n; ++c)
            for (int g = 0; g < groups; ++g) {
                int64_t s = 0;
                const int8_t *a = qa + size_t(r) * k + size_t(g) * group_size;
                const int8_t *b = qw + size_t(c) * k + size_t(g) * group_size;
                for (int i = 0; i < group_size; ++i) s += int64_t(a[i]) * int64_t(b[i]);
                if (s > INT32_MAX || s < INT32_MIN) throw std::overflow_error("group accumulator exceeds int32");
                acc[(size_t(r) * n + c) * groups + g] = int32_t(s);
            }
    return acc;
}

std::vector<float> gemm_scale_ref(const std::vector<int32_t> &acc, const float *sx, const uint16_t *sw, int m, int n, int k) {
    const int groups = k / group_size;
    std::vector<float> out(size_t(m) * n);
    for (int r = 0; r < m; ++r)
        for (int c = 0; c < n; ++c) {
            float s = 0.f;
            for (int g = 0; g < groups; ++g)
                s += (float(acc[(size_t(r) * n + c) * groups + g]) * half_to_float(sw[size_t(c) * groups + g])) * sx[size_t(g) * m + r];
            out[size_t(r) * n + c] = s;
        }
    return out;
}

std::vector<double> gemm_scale_ref_f64(const std::vector<int32_t> &acc, const float *sx, const uint16_t *sw, int m, int n, int k,
                                       std::vector<double> *abs_sum) {
    const int groups = k / group_size;
    std::vector<double> out(size_t(m) * n);
    if (abs_sum) abs_sum->assign(size_t(m) * n, 0.0);
    for (int r = 0; r < m; ++r)
        for (int c = 0; c < n; ++c) {
            double s = 0, a = 0;
            for (int g = 0; g < groups; ++g) {
                const double term = double(acc[(size_t(r) * n + c) * groups + g]) * double(sx[size_t(g) * m + r]) *
                                    double(half_to_float(sw[size_t(c) * groups + g]));
                s += term;
                a += std::fabs(term);
            }
            out[size_t(r) * n + c] = s;
            if (abs_sum) (*abs_sum)[size_t(r) * n + c] = a;
        }
    return out;
}

status check_w6_shape(const char *who, int m, int n, int k) {
    if (m <= 0 || n <= 0 || k <= 0)
        return status::failure(status_code::invalid_argument,
                               std::string(who) + ": m, n, k must be positive (m=" + std::to_string(m) + ", n=" + std::to_string(n) +
                                   ", k=" + std::to_string(k) + ")");
    if (k % group_size != 0)
        return status::failure(status_code::unsupported_shape, std::string(who) + ": k must be a multiple of 128 (k=" + std::to_string(k) +
                                                                   ", k % 128 = " + std::to_string(k % group_size) + ")");
    return status::success();
}

} // namespace qb::w6
