// Host entry of the exhaustive act_code.cuh check (act_code_exhaustive.cu), for the gpu suite.
#pragma once
#include <cstdint>

struct act_code_report {
    bool ran = false;
    unsigned long long checked = 0, mismatches = 0; // codes
    unsigned long long scale_mismatches = 0;       // scales (one per amax)
    uint16_t first_amax_bits = 0, first_x_bits = 0; // the smallest failing pair, fp16 bits (x 0: the scale)
};

act_code_report act_code_exhaustive(int bits);
