// Messages of a run go to stderr and, while a run record is open, to its log.txt as well.
#pragma once
#include <fmt/format.h>

#include <cstdio>
#include <string>

namespace qb {

void log_line(const std::string &line);       // stderr + attached log file, timestamped in the file
void log_attach_file(std::FILE *file);         // nullptr detaches
void log_set_quiet(bool quiet);                // stderr silent (tests); files still get lines

template <class... Args>
void log_info(fmt::format_string<Args...> format, Args &&...args) {
    log_line(fmt::format(format, std::forward<Args>(args)...));
}

} // namespace qb
