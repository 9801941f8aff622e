// Progress for long work: a redrawn bar with rate and ETA on a terminal, plain lines otherwise
// (one every 10 s and a final one, so CI logs and log.txt stay readable).
#pragma once
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace qb {

class progress {
public:
    progress(std::string label, uint64_t total, std::string unit = "it", std::FILE *out = stderr);
    ~progress(); // finishes the line
    void advance(uint64_t n = 1);
    void finish();
    double rate() const; // units per second so far

    // Rendering, exposed for tests: "label  45% [#########...........]  450/1000 it  12.3 it/s  ETA 0:44"
    static std::string render(const std::string &label, uint64_t done, uint64_t total, double rate,
                              const std::string &unit, int bar_width);
    static std::string format_duration(double seconds); // "1:02:03", "4:05"

private:
    void draw(bool final);
    std::string label_, unit_;
    uint64_t total_, done_ = 0;
    std::FILE *out_;
    bool tty_, finished_ = false;
    std::chrono::steady_clock::time_point start_, last_draw_;
};

} // namespace qb
