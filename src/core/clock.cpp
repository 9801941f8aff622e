#include "core/clock.h"

#include <ctime>

namespace qb {

std::string utc_format(std::chrono::system_clock::time_point t, bool compact) {
    std::time_t secs = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, compact ? "%Y%m%dT%H%M%SZ" : "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::string utc_now_iso() { return utc_format(std::chrono::system_clock::now(), false); }
std::string utc_now_compact() { return utc_format(std::chrono::system_clock::now(), true); }

} // namespace qb
