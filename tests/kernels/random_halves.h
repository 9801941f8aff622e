// Random fp16 test inputs shared by the GPU kernel tests.
#pragma once
#include "quant_pack/w6_ref.h"

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace qb::test {

// n fp16 values (as bits) uniform in (-amp, amp), none smaller in magnitude than amp / 1000: a
// kernel that drops a term, or reads a zeroed buffer for an input, must not go unnoticed.
inline std::vector<uint16_t> random_halves(size_t n, float amp, std::mt19937 &rng) {
    std::uniform_real_distribution<float> dist(-amp, amp);
    const float floor = amp * 1e-3f;
    std::vector<uint16_t> h(n);
    for (auto &x : h) {
        float v = dist(rng);
        if (std::fabs(v) < floor) v = std::copysign(floor, v);
        x = qb::w6::float_to_half(v);
    }
    return h;
}

} // namespace qb::test
