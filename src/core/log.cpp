#include "core/log.h"

#include "core/clock.h"

#include <mutex>

namespace qb {
namespace {
std::mutex log_mutex;
std::FILE *log_file = nullptr;
bool log_quiet = false;
} // namespace

void log_line(const std::string &line) {
    std::lock_guard lock(log_mutex);
    if (!log_quiet) {
        std::fputs(line.c_str(), stderr);
        std::fputc('\n', stderr);
    }
    if (log_file) {
        std::fprintf(log_file, "%s %s\n", utc_now_iso().c_str(), line.c_str());
        std::fflush(log_file); // a crash must not lose what was already said
    }
}

void log_attach_file(std::FILE *file) {
    std::lock_guard lock(log_mutex);
    log_file = file;
}

void log_set_quiet(bool quiet) {
    std::lock_guard lock(log_mutex);
    log_quiet = quiet;
}

} // namespace qb
