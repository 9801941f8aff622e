#include "common/device_info.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <cstdio>

namespace qb::cuda {
namespace {

// The few NVML entry points we need, declared here so that no NVML header or stub library is
// needed at build time (nvml.h is not in every toolkit install).
struct nvml_api {
    using init_fn = int (*)();
    using shutdown_fn = int (*)();
    using driver_fn = int (*)(char *, unsigned);
    using handle_fn = int (*)(const char *, void **);
    using clock_fn = int (*)(void *, int, unsigned *);
    void *lib = nullptr;
    init_fn init = nullptr;
    shutdown_fn shutdown = nullptr;
    driver_fn driver_version = nullptr;
    handle_fn handle_by_uuid = nullptr;
    clock_fn clock_info = nullptr;
    clock_fn max_clock_info = nullptr;

    bool open() {
        lib = dlopen("libnvidia-ml.so.1", RTLD_LAZY | RTLD_LOCAL);
        if (!lib) return false;
        init = reinterpret_cast<init_fn>(dlsym(lib, "nvmlInit_v2"));
        shutdown = reinterpret_cast<shutdown_fn>(dlsym(lib, "nvmlShutdown"));
        driver_version = reinterpret_cast<driver_fn>(dlsym(lib, "nvmlSystemGetDriverVersion"));
        handle_by_uuid = reinterpret_cast<handle_fn>(dlsym(lib, "nvmlDeviceGetHandleByUUID"));
        clock_info = reinterpret_cast<clock_fn>(dlsym(lib, "nvmlDeviceGetClockInfo"));
        max_clock_info = reinterpret_cast<clock_fn>(dlsym(lib, "nvmlDeviceGetMaxClockInfo"));
        return init && shutdown && driver_version && init() == 0;
    }
    ~nvml_api() {
        if (lib && shutdown) shutdown();
        if (lib) dlclose(lib);
    }
};

constexpr int nvml_clock_sm = 1;  // NVML_CLOCK_SM
constexpr int nvml_clock_mem = 2; // NVML_CLOCK_MEM

std::string format_uuid(const cudaUUID_t &uuid) {
    const auto *b = reinterpret_cast<const unsigned char *>(uuid.bytes);
    char out[64];
    std::snprintf(out, sizeof out, "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1], b[2],
                  b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
    return out;
}

} // namespace

cuda_environment query_cuda_environment() {
    cuda_environment env;
    cudaRuntimeGetVersion(&env.runtime_version);
    cudaDriverGetVersion(&env.driver_api_version);
    int major = 0, minor = 0, patch = 0;
    if (cublasGetProperty(MAJOR_VERSION, &major) == CUBLAS_STATUS_SUCCESS &&
        cublasGetProperty(MINOR_VERSION, &minor) == CUBLAS_STATUS_SUCCESS &&
        cublasGetProperty(PATCH_LEVEL, &patch) == CUBLAS_STATUS_SUCCESS)
        env.cublas_version = major * 10000 + minor * 100 + patch;

    int count = 0;
    cudaError_t err = cudaGetDeviceCount(&count);
    if (err != cudaSuccess) {
        env.error = cudaGetErrorString(err);
        cudaGetLastError(); // clear the sticky-free error so later calls start clean
        return env;
    }
    nvml_api nvml;
    bool have_nvml = nvml.open();
    std::string driver;
    if (have_nvml) {
        char buf[96] = {};
        if (nvml.driver_version(buf, sizeof buf) == 0) driver = buf;
    }
    for (int i = 0; i < count; ++i) {
        cudaDeviceProp prop{};
        if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
        gpu_info g;
        g.index = i;
        g.name = prop.name;
        g.uuid = format_uuid(prop.uuid);
        g.cc_major = prop.major;
        g.cc_minor = prop.minor;
        g.sm_count = prop.multiProcessorCount;
        g.memory_bytes = static_cast<long long>(prop.totalGlobalMem);
        g.l2_bytes = prop.l2CacheSize;
        g.driver = driver;
        void *handle = nullptr;
        if (have_nvml && nvml.handle_by_uuid && nvml.handle_by_uuid(g.uuid.c_str(), &handle) == 0) {
            unsigned mhz = 0;
            if (nvml.clock_info && nvml.clock_info(handle, nvml_clock_sm, &mhz) == 0) g.sm_clock_mhz = static_cast<int>(mhz);
            if (nvml.clock_info && nvml.clock_info(handle, nvml_clock_mem, &mhz) == 0) g.mem_clock_mhz = static_cast<int>(mhz);
            if (nvml.max_clock_info && nvml.max_clock_info(handle, nvml_clock_sm, &mhz) == 0)
                g.sm_clock_max_mhz = static_cast<int>(mhz);
        }
        env.gpus.push_back(std::move(g));
    }
    return env;
}

int current_device_sm_count() {
    static const int count = [] {
        int dev = 0, c = 0;
        if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&c, cudaDevAttrMultiProcessorCount, dev) != cudaSuccess || c <= 0) c = 132;
        return c;
    }();
    return count;
}

int current_device_cc() {
    static const int cc = [] {
        int dev = 0, major = 0, minor = 0;
        if (cudaGetDevice(&dev) != cudaSuccess || cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
            cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess)
            return 0;
        return 10 * major + minor;
    }();
    return cc;
}

const std::string &current_device_name() {
    static const std::string name = [] {
        int dev = 0;
        cudaDeviceProp prop{};
        if (cudaGetDevice(&dev) != cudaSuccess || cudaGetDeviceProperties(&prop, dev) != cudaSuccess) return std::string();
        return std::string(prop.name);
    }();
    return name;
}

} // namespace qb::cuda
