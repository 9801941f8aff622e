// Wall-clock stamps for manifests and run folder names (UTC, second resolution).
#pragma once
#include <chrono>
#include <string>

namespace qb {

std::string utc_now_iso();     // "2026-11-22T05:39:00Z"
std::string utc_now_compact(); // "20261122T053900Z" (run folder names sort by time)
std::string utc_format(std::chrono::system_clock::time_point t, bool compact);

} // namespace qb
