#include "common/cuda_check.h"

#include <cstdio>

namespace qb::cuda {

std::string describe_failure(const char *statement, const char *error, const char *file, int line) {
    int device = -1;
    cudaGetDevice(&device);
    char buf[1024];
    std::snprintf(buf, sizeof buf, "CUDA error: %s\n  device %d, at %s:%d\n  %s", error, device, file, line, statement);
    return buf;
}

} // namespace qb::cuda
