#include "core/environment.h"

#include "build_info.h"
#include "config.h"
#include "core/text.h"

#if QBENCH_HAVE_CUDA
#include "common/device_info.h"
#endif

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <thread>

namespace qb {

std::filesystem::path source_dir() { return QBENCH_SOURCE_DIR; }

std::string run_capture(const std::string &command) {
    std::string out;
    std::FILE *pipe = popen((command + " 2>/dev/null").c_str(), "r");
    if (!pipe) return out;
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
    if (pclose(pipe) != 0) return "";
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) out.pop_back();
    return out;
}

git_state git_state_of(const std::filesystem::path &dir) {
    git_state g;
    g.build_describe = QBENCH_GIT_DESCRIBE;
    // A caller that states the revision wins: the GPU machine gets a copy of the tree whose
    // surroundings may hold some other repository.
    if (const char *c = std::getenv("QBENCH_GIT_COMMIT"); c && *c) {
        g.commit = c;
        const char *d = std::getenv("QBENCH_GIT_DIRTY");
        g.dirty = d && std::string(d) != "0";
        g.source = "QBENCH_GIT_COMMIT";
        return g;
    }
    const std::string quoted = "'" + dir.string() + "'";
    g.commit = run_capture("git -C " + quoted + " rev-parse HEAD");
    if (!g.commit.empty()) {
        g.dirty = !run_capture("git -C " + quoted + " status --porcelain --untracked-files=no").empty();
        g.source = "git";
    }
    return g;
}

namespace {

std::string cpu_model() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("model name", 0) == 0) {
            auto pos = line.find(':');
            if (pos != std::string::npos) return std::string(trim(line.substr(pos + 1)));
        }
    return "";
}

std::string os_release() {
    std::ifstream in("/etc/os-release");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("PRETTY_NAME=", 0) == 0) {
            std::string v = line.substr(12);
            if (v.size() >= 2 && v.front() == '"') v = v.substr(1, v.size() - 2);
            return v;
        }
    return "";
}

std::string version_text(int v) { // 13000 -> "13.0"
    return v ? fmt::format("{}.{}", v / 1000, (v % 1000) / 10) : "";
}

json compute_environment() {
    json env;
    auto g = git_state_of(source_dir());
    env["git"] = {{"commit", g.commit}, {"dirty", g.dirty}, {"source", g.source}, {"build_describe", g.build_describe}};
    env["build"] = {{"type", QBENCH_BUILD_TYPE},
                    {"cxx", QBENCH_CXX_ID},
                    {"cxx_flags", QBENCH_CXX_FLAGS},
                    {"cuda", bool(QBENCH_HAVE_CUDA)},
                    {"nvcc", QBENCH_NVCC_VERSION},
                    {"cuda_arch", QBENCH_CUDA_ARCH},
                    {"optimization", QBENCH_OPTIMIZATION},
                    {"ndebug", QBENCH_NDEBUG}};
    json versions = {{"qbench", QBENCH_VERSION}, {"libtorch", QBENCH_TORCH_VERSION}};
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    env["host"] = {{"hostname", host},
                   {"cpu", cpu_model()},
                   {"cores", std::thread::hardware_concurrency()},
                   {"os", os_release()}};
    env["gpu"] = nullptr;
#if QBENCH_HAVE_CUDA
    auto cuda = qb::cuda::query_cuda_environment();
    versions["cuda_runtime"] = version_text(cuda.runtime_version);
    versions["cuda_driver_api"] = version_text(cuda.driver_api_version);
    versions["cublas"] = cuda.cublas_version ? fmt::format("{}.{}.{}", cuda.cublas_version / 10000,
                                                           (cuda.cublas_version / 100) % 100, cuda.cublas_version % 100)
                                             : "";
    if (!cuda.gpus.empty()) {
        json gpus = json::array();
        for (const auto &d : cuda.gpus)
            gpus.push_back({{"index", d.index},
                            {"name", d.name},
                            {"uuid", d.uuid},
                            {"sm", fmt::format("{}.{}", d.cc_major, d.cc_minor)},
                            {"sm_count", d.sm_count},
                            {"memory_bytes", d.memory_bytes},
                            {"l2_bytes", d.l2_bytes},
                            {"driver", d.driver},
                            {"sm_clock_mhz", d.sm_clock_mhz},
                            {"sm_clock_max_mhz", d.sm_clock_max_mhz},
                            {"mem_clock_mhz", d.mem_clock_mhz}});
        env["gpu"] = gpus[0];
        env["gpus"] = gpus;
    } else {
        env["gpu_error"] = cuda.error;
    }
#endif
    env["versions"] = versions;
    return env;
}

} // namespace

json environment_json() {
    static std::once_flag once;
    static json cached;
    std::call_once(once, [] { cached = compute_environment(); });
    return cached;
}

} // namespace qb
