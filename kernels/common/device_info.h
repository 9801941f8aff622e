// What GPU a number was measured on: name, UUID, SMs, memory, clocks, driver and CUDA versions.
// Torch-free; compiled only with CUDA. NVML is opened with dlopen at run time, so a build machine
// without a driver links fine and a GPU machine reports the driver version and clocks.
#pragma once
#include <string>
#include <vector>

namespace qb::cuda {

struct gpu_info {
    int index = 0;
    std::string name;          // "NVIDIA H100 80GB HBM3"
    std::string uuid;          // "GPU-xxxxxxxx-..."
    int cc_major = 0, cc_minor = 0;
    int sm_count = 0;
    long long memory_bytes = 0;
    long long l2_bytes = 0;
    std::string driver;        // "580.159" (NVML), "" if NVML is unavailable
    int sm_clock_mhz = -1;     // current (NVML), -1 unknown
    int sm_clock_max_mhz = -1;
    int mem_clock_mhz = -1;
};

struct cuda_environment {
    int runtime_version = 0;   // cudaRuntimeGetVersion, e.g. 13000
    int driver_api_version = 0; // cudaDriverGetVersion (0 when no driver is installed)
    int cublas_version = 0;    // cublasGetProperty major*10000+minor*100+patch
    std::vector<gpu_info> gpus;
    std::string error;         // why no GPU was found ("no CUDA-capable device", ...)
};

cuda_environment query_cuda_environment();

// The device current at the first call, queried once per process (launchers call these on every
// launch). SMs: what launchers size one full wave of blocks by (132, an H100's, when the query
// fails). Compute capability as 10 * major + minor (90 on Hopper; 0 when the query fails).
int current_device_sm_count();
int current_device_cc();
// Its name ("NVIDIA H200"; "" when the query fails), e.g. to pick a table measured on that GPU.
const std::string &current_device_name();

} // namespace qb::cuda
