#include "core/progress.h"

#include "core/log.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace qb {

progress::progress(std::string label, uint64_t total, std::string unit, std::FILE *out)
    : label_(std::move(label)), unit_(std::move(unit)), total_(total), out_(out),
      tty_(out && isatty(fileno(out)) != 0), start_(std::chrono::steady_clock::now()), last_draw_(start_) {}

progress::~progress() { finish(); }

double progress::rate() const {
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    return secs > 0 ? double(done_) / secs : 0.0;
}

std::string progress::format_duration(double seconds) {
    if (!std::isfinite(seconds) || seconds < 0) return "--:--";
    auto s = static_cast<long long>(std::llround(seconds));
    if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60);
    return fmt::format("{}:{:02}", s / 60, s % 60);
}

std::string progress::render(const std::string &label, uint64_t done, uint64_t total, double rate, const std::string &unit,
                             int bar_width) {
    double frac = total ? std::min(1.0, double(done) / double(total)) : 0.0;
    int filled = static_cast<int>(frac * bar_width);
    std::string bar(static_cast<size_t>(filled), '#');
    bar += std::string(static_cast<size_t>(bar_width - filled), '.');
    double eta = rate > 0 && total >= done ? double(total - done) / rate : NAN;
    return fmt::format("{}  {:3.0f}% [{}]  {}/{} {}  {:.1f} {}/s  ETA {}", label, frac * 100, bar, done, total, unit, rate, unit,
                       format_duration(eta));
}

void progress::draw(bool final) {
    if (!out_) return;
    auto now = std::chrono::steady_clock::now();
    if (tty_) {
        if (!final && now - last_draw_ < std::chrono::milliseconds(100)) return;
        last_draw_ = now;
        std::fprintf(out_, "\r%s\x1b[K", render(label_, done_, total_, rate(), unit_, 30).c_str());
        if (final) std::fputc('\n', out_);
        std::fflush(out_);
        return;
    }
    // Plain output (logs, CI): one line per 10 s of work and a final one, nothing per step.
    bool due = now - last_draw_ >= std::chrono::seconds(10);
    if (!final && !due) return;
    log_line(render(label_, done_, total_, rate(), unit_, 20));
}

void progress::advance(uint64_t n) {
    done_ += n;
    draw(false);
}

void progress::finish() {
    if (finished_) return;
    finished_ = true;
    draw(true);
}

} // namespace qb
