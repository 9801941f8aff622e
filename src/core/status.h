// Typed reasons why something cannot run (CUTLASS Status style). Kernels and launchers return a
// status instead of throwing; adapters turn a non-ok status into a qb::error with context.
#pragma once
#include <string>
#include <utility>

namespace qb {

enum class status_code {
    ok,                 // runs
    unsupported_shape,  // a dimension the implementation cannot handle (k % 128 != 0, ...)
    unsupported_dtype,  // element type not implemented
    unsupported_arch,   // needs a newer GPU / a CUDA build
    unsupported_option, // an option value this implementation refuses
    invalid_argument,   // caller error (null pointer, negative size)
    internal,           // a CUDA / library call failed
};

inline const char *status_code_name(status_code code) {
    switch (code) {
    case status_code::ok: return "ok";
    case status_code::unsupported_shape: return "unsupported_shape";
    case status_code::unsupported_dtype: return "unsupported_dtype";
    case status_code::unsupported_arch: return "unsupported_arch";
    case status_code::unsupported_option: return "unsupported_option";
    case status_code::invalid_argument: return "invalid_argument";
    case status_code::internal: return "internal";
    }
    return "unknown";
}

struct status {
    status_code code = status_code::ok;
    std::string reason; // human-readable, names the values: "k must be a multiple of 128 (k=4100)"

    bool ok() const { return code == status_code::ok; }
    explicit operator bool() const { return ok(); }

    static status success() { return {}; }
    static status failure(status_code c, std::string why) { return {c, std::move(why)}; }
};

} // namespace qb
