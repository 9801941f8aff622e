// Device memory for the kernel tests: one allocation, uploads and downloads that REQUIRE success,
// and a poison fill (a kernel that skips an output cell is caught).
#pragma once
#include <cuda_runtime.h>
#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

namespace qb::test {

template <class T>
struct device_buffer {
    T *ptr = nullptr;
    size_t count = 0;
    explicit device_buffer(size_t n) : count(n) { REQUIRE(cudaMalloc(&ptr, std::max<size_t>(n, 1) * sizeof(T)) == cudaSuccess); }
    explicit device_buffer(const std::vector<T> &h) : device_buffer(h.size()) { upload(h); }
    ~device_buffer() { cudaFree(ptr); }
    device_buffer(const device_buffer &) = delete;
    device_buffer &operator=(const device_buffer &) = delete;
    void upload(const std::vector<T> &h) { REQUIRE(cudaMemcpy(ptr, h.data(), count * sizeof(T), cudaMemcpyHostToDevice) == cudaSuccess); }
    std::vector<T> download() const {
        std::vector<T> h(count);
        REQUIRE(cudaMemcpy(h.data(), ptr, count * sizeof(T), cudaMemcpyDeviceToHost) == cudaSuccess);
        return h;
    }
    // Synchronized: cudaMemset runs on the legacy default stream, which a non-blocking stream does
    // not wait for (the chain test's stream is one: an unfinished poison raced its first kernels).
    void poison(unsigned char byte = 0xFF) {
        REQUIRE(cudaMemset(ptr, byte, count * sizeof(T)) == cudaSuccess);
        REQUIRE(cudaDeviceSynchronize() == cudaSuccess);
    }
};

} // namespace qb::test
