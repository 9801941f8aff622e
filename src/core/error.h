// The one exception type of the host code, with fmt-checked messages.
#pragma once
#include <fmt/format.h>

#include <stdexcept>
#include <string>

namespace qb {

struct error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Throws qb::error with a formatted message; the format string is checked at compile time.
template <class... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args &&...args) {
    throw error(fmt::format(format, std::forward<Args>(args)...));
}

} // namespace qb
