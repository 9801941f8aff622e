#include "decode_attn/decode_attn_ref.h"

#include "quant_pack/w6_ref.h" // float_to_half, half_to_float

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace qb::attn {
namespace {

using qb::w6::float_to_half;
using qb::w6::half_to_float;

// One head's D values rotated at `pos`, as fp16 bits: x * cos + partner * (-sin | +sin), each
// product and the sum rounded to fp32 (volatile keeps the compiler from contracting them to fmas).
std::vector<uint16_t> rotate(const uint16_t *x, const decode_attn_problem &p) {
    const int d = p.head_dim, half = d / 2;
    const float *cos_row = p.rope_cos.data() + size_t(p.pos) * half, *sin_row = p.rope_sin.data() + size_t(p.pos) * half;
    std::vector<uint16_t> y(d);
    for (int e = 0; e < d; ++e) {
        int partner, angle;
        bool negate;
        if (p.rope == rope_pairs::interleaved) partner = e ^ 1, angle = e / 2, negate = (e % 2) == 0;
        else partner = e < half ? e + half : e - half, angle = e % half, negate = e < half;
        const float s = negate ? -sin_row[angle] : sin_row[angle];
        volatile float a = half_to_float(x[e]) * cos_row[angle];
        volatile float b = half_to_float(x[partner]) * s;
        volatile float sum = a + b;
        y[e] = float_to_half(sum);
    }
    return y;
}

} // namespace

decode_attn_expected decode_attention_ref(const decode_attn_problem &p) {
    const int d = p.head_dim, group = p.heads / p.kv_heads;
    if (p.pos < 0 || p.pos >= p.capacity) throw std::invalid_argument("decode_attention_ref: pos outside the cache");
    decode_attn_expected r;
    r.cache_k = p.cache_k;
    r.cache_v = p.cache_v;
    r.out.assign(size_t(p.batch) * p.heads * d, 0.0);
    r.fp32_bound.assign(r.out.size(), 0.0);
    const double scale = 1.0 / std::sqrt(double(d));
    const double u = std::ldexp(1.0, -24); // fp32 unit roundoff
    for (int b = 0; b < p.batch; ++b)
        for (int g = 0; g < p.kv_heads; ++g) {
            const size_t row0 = (size_t(b) * p.kv_heads + g) * p.capacity;
            const auto k_new = rotate(p.k.data() + (size_t(b) * p.kv_heads + g) * d, p);
            std::copy(k_new.begin(), k_new.end(), r.cache_k.begin() + (row0 + p.pos) * d);
            std::copy_n(p.v.begin() + (size_t(b) * p.kv_heads + g) * d, d, r.cache_v.begin() + (row0 + p.pos) * d);
            double vmax = 0;
            for (int j = 0; j <= p.pos; ++j)
                for (int e = 0; e < d; ++e) vmax = std::max(vmax, std::fabs(double(half_to_float(r.cache_v[(row0 + j) * d + e]))));
            for (int hr = 0; hr < group; ++hr) {
                const int h = g * group + hr;
                const auto q = rotate(p.q.data() + (size_t(b) * p.heads + h) * d, p);
                std::vector<double> s(p.pos + 1);
                double smax = -INFINITY, dot_abs = 0;
                for (int j = 0; j <= p.pos; ++j) {
                    double dot = 0, a = 0;
                    for (int e = 0; e < d; ++e) {
                        const double prod = double(half_to_float(q[e])) * double(half_to_float(r.cache_k[(row0 + j) * d + e]));
                        dot += prod;
                        a += std::fabs(prod);
                    }
                    s[j] = dot * scale;
                    smax = std::max(smax, s[j]);
                    dot_abs = std::max(dot_abs, a * scale);
                }
                double l = 0;
                for (auto &x : s) l += (x = std::exp(x - smax));
                // The kernel's fp32 error, bounded: a score is D/32 fmas, a 5-level shuffle tree and
                // the scale product (D/32 + 7 roundings of at most sum|q k| / sqrt(D) each); an error
                // ds in every score changes each weight by a relative 2 ds at most, and so the output
                // by 2 ds * max|v|. The weighted sum is a chain of roundings, each at most u times a
                // partial sum of terms p_j |v_j| (at most l max|v|, so u max|v| after the division by
                // l): per 64-row chunk the 8 fmas a warp makes and the online softmax's rescale (an
                // expf of 2 ulp, a product) and running sums, 12 in all; then the 8 warps' sum and
                // the splits' combine (expf, fmas, the division), some 40 more.
                const double ds = (d / 32 + 7) * u * dot_abs;
                const double rest = (40 + 12 * (p.pos / 64 + 1)) * u;
                for (int e = 0; e < d; ++e) {
                    double o = 0;
                    for (int j = 0; j <= p.pos; ++j) o += s[j] * double(half_to_float(r.cache_v[(row0 + j) * d + e]));
                    const size_t i = (size_t(b) * p.heads + h) * d + e;
                    r.out[i] = o / l;
                    r.fp32_bound[i] = (2 * ds + rest) * vmax;
                }
            }
        }
    return r;
}

} // namespace qb::attn
