// GPU suite: the reference kernels and cuBLAS against CPU references (integers bit-exact), and the
// device query the manifests rely on.
#include "common/device_info.h"
#include "common/gemm_ref.h"
#include "kernels/device_buffer.h"

#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <doctest/doctest.h>

#include <cmath>
#include <random>
#include <vector>

namespace {

using qb::test::device_buffer;


std::vector<int8_t> random_int8(size_t n, std::mt19937 &rng, int lo, int hi) {
    std::uniform_int_distribution<int> d(lo, hi);
    std::vector<int8_t> v(n);
    for (auto &x : v) {
        int r = d(rng);
        x = static_cast<int8_t>(r == 0 ? 1 : r); // never zeros
    }
    return v;
}

} // namespace

TEST_SUITE("gpu") {

TEST_CASE("device query finds the GPU") {
    auto env = qb::cuda::query_cuda_environment();
    REQUIRE_MESSAGE(!env.gpus.empty(), "no GPU: " << env.error);
    const auto &g = env.gpus[0];
    MESSAGE("GPU: " << g.name << " sm_" << g.cc_major << g.cc_minor << ", " << g.sm_count << " SMs, driver " << g.driver);
    CHECK(g.sm_count > 0);
    CHECK(g.memory_bytes > 0);
    CHECK(g.uuid.rfind("GPU-", 0) == 0);
    CHECK(env.runtime_version >= 12000);
}

TEST_CASE("gemm_s8s8_s32_tn_ref is bit-exact against a CPU int64 reference") {
    std::mt19937 rng(1234);
    const int ms[] = {1, 3, 8, 17, 118};
    const int nks[][2] = {{1, 1}, {7, 33}, {64, 128}, {129, 257}, {250, 4096}};
    for (int m : ms)
        for (const auto &nk : nks) {
            const int n = nk[0], k = nk[1];
            // Extremes included: -128 * -128 products at every position of some rows.
            auto a = random_int8(size_t(m) * k, rng, -128, 127);
            auto b = random_int8(size_t(n) * k, rng, -128, 127);
            if (m > 1) std::fill(a.begin(), a.begin() + k, int8_t(-128));
            if (n > 1) std::fill(b.begin(), b.begin() + k, int8_t(-128));
            device_buffer<int8_t> da(a.size()), db(b.size());
            device_buffer<int32_t> dc(size_t(m) * n);
            da.upload(a);
            db.upload(b);
            dc.poison(0xA5);
            auto st = qb::cuda::gemm_s8s8_s32_tn_ref(m, n, k, da.ptr, db.ptr, dc.ptr, nullptr);
            REQUIRE_MESSAGE(st.ok(), st.reason);
            REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
            auto c = dc.download();
            int mismatches = 0;
            for (int i = 0; i < m; ++i)
                for (int j = 0; j < n; ++j) {
                    int64_t ref = 0;
                    for (int x = 0; x < k; ++x) ref += int64_t(a[size_t(i) * k + x]) * b[size_t(j) * k + x];
                    if (ref != c[size_t(i) * n + j] && mismatches++ < 3)
                        MESSAGE("s8_ref m=" << m << " n=" << n << " k=" << k << " at (" << i << "," << j << "): got " << c[size_t(i) * n + j]
                                            << " want " << ref);
                }
            CHECK_MESSAGE(mismatches == 0, "s8_ref/m=" << m << ",n=" << n << ",k=" << k);
        }
}

TEST_CASE("the reference kernel refuses what it cannot do") {
    auto st = qb::cuda::gemm_s8s8_s32_tn_ref(1, 1, 200000, nullptr, nullptr, nullptr, nullptr);
    CHECK(st.code == qb::status_code::unsupported_shape);
    CHECK(qb::cuda::gemm_s8s8_s32_tn_ref(0, 4, 4, nullptr, nullptr, nullptr, nullptr).code == qb::status_code::invalid_argument);
}

TEST_CASE("cuBLAS fp16 GEMM (TN, fp32 accumulate) matches the fp32-accumulating reference kernel and the CPU") {
    const int m = 17, n = 300, k = 4096;
    std::mt19937 rng(99);
    std::normal_distribution<float> d(0.f, 1.f);
    std::vector<__half> a(size_t(m) * k), b(size_t(n) * k);
    for (auto &x : a) x = __float2half(d(rng));
    for (auto &x : b) x = __float2half(d(rng));
    device_buffer<__half> da(a.size()), db(b.size()), dc(size_t(m) * n);
    device_buffer<float> dref(size_t(m) * n);
    da.upload(a);
    db.upload(b);
    dc.poison(0xA5);
    cublasHandle_t h;
    REQUIRE(cublasCreate(&h) == CUBLAS_STATUS_SUCCESS);
    const float alpha = 1, beta = 0;
    REQUIRE(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, n, m, k, &alpha, db.ptr, CUDA_R_16F, k, da.ptr, CUDA_R_16F, k, &beta, dc.ptr,
                         CUDA_R_16F, n, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT) == CUBLAS_STATUS_SUCCESS);
    REQUIRE(qb::cuda::gemm_f16_f32acc_tn_ref(m, n, k, da.ptr, db.ptr, dref.ptr, nullptr).ok());
    REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    cublasDestroy(h);
    auto c = dc.download();
    auto ref_gpu = dref.download();
    double worst = 0;
    for (int i = 0; i < m; ++i)
        for (int j = 0; j < n; ++j) {
            double ref = 0, mag = 0;
            for (int x = 0; x < k; ++x) {
                double p = double(__half2float(a[size_t(i) * k + x])) * double(__half2float(b[size_t(j) * k + x]));
                ref += p;
                mag += std::fabs(p);
            }
            // Tolerance: the fp16 output rounds to 2^-11 relative; fp32 accumulation over K terms in
            // any order adds at most K * 2^-24 * sum|a*b| (a loose worst-case bound; typical is far less).
            const double tol = std::fabs(ref) * std::ldexp(1.0, -11) + k * std::ldexp(1.0, -24) * mag;
            const double got = __half2float(c[size_t(i) * n + j]);
            worst = std::max(worst, std::fabs(got - ref) / tol);
            CHECK_MESSAGE(std::fabs(got - ref) <= tol, "cublas_f16 (" << i << "," << j << "): " << got << " vs " << ref << " tol " << tol);
            CHECK(std::fabs(ref_gpu[size_t(i) * n + j] - ref) <= k * std::ldexp(1.0, -24) * mag);
        }
    MESSAGE("cuBLAS fp16 worst error / tolerance = " << worst);
}

} // TEST_SUITE
