// Scatter plot to PNG without image libraries (plot_png.h).
#include "quant/plot_png.h"

#include "config.h"
#include "core/error.h"

#if QBENCH_HAVE_ZLIB
#include <zlib.h>
#endif

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>

namespace qb {

namespace {

// ---- PNG container --------------------------------------------------------------------------

uint32_t crc32_of(const unsigned char *data, size_t n, uint32_t crc = 0) {
    static const auto table = [] {
        std::array<uint32_t, 256> t{};
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    crc = ~crc;
    for (size_t i = 0; i < n; ++i) crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

void put_u32(std::vector<unsigned char> &out, uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<unsigned char>(v >> s));
}

void put_chunk(std::vector<unsigned char> &out, const char *type, const std::vector<unsigned char> &data) {
    put_u32(out, static_cast<uint32_t>(data.size()));
    const size_t start = out.size();
    out.insert(out.end(), type, type + 4);
    out.insert(out.end(), data.begin(), data.end());
    put_u32(out, crc32_of(out.data() + start, out.size() - start));
}

// A zlib stream of `raw`: deflated by zlib when available, else stored blocks (RFC 1950/1951).
std::vector<unsigned char> zlib_stream(const std::vector<unsigned char> &raw) {
#if QBENCH_HAVE_ZLIB
    uLongf size = compressBound(static_cast<uLong>(raw.size()));
    std::vector<unsigned char> out(size);
    if (compress2(out.data(), &size, raw.data(), static_cast<uLong>(raw.size()), 6) != Z_OK) fail("png: zlib compress2 failed");
    out.resize(size);
    return out;
#else
    std::vector<unsigned char> out = {0x78, 0x01};
    size_t pos = 0;
    do {
        const size_t n = std::min<size_t>(65535, raw.size() - pos);
        out.push_back(pos + n == raw.size() ? 1 : 0); // BFINAL, BTYPE = stored
        out.push_back(static_cast<unsigned char>(n & 0xFF));
        out.push_back(static_cast<unsigned char>(n >> 8));
        out.push_back(static_cast<unsigned char>(~n & 0xFF));
        out.push_back(static_cast<unsigned char>((~n >> 8) & 0xFF));
        out.insert(out.end(), raw.begin() + long(pos), raw.begin() + long(pos + n));
        pos += n;
    } while (pos < raw.size());
    uint32_t a = 1, b = 0; // Adler-32
    for (unsigned char c : raw) {
        a = (a + c) % 65521;
        b = (b + a) % 65521;
    }
    put_u32(out, (b << 16) | a);
    return out;
#endif
}

// ---- drawing --------------------------------------------------------------------------------

struct rgb {
    unsigned char r, g, b;
};

class canvas {
public:
    canvas(int w, int h) : w_(w), h_(h), px_(size_t(w) * h * 3, 255) {}
    void set(int x, int y, rgb c) {
        if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
        auto *p = &px_[(size_t(y) * w_ + x) * 3];
        p[0] = c.r, p[1] = c.g, p[2] = c.b;
    }
    void hline(int x0, int x1, int y, rgb c, int dash = 0) {
        for (int x = x0; x <= x1; ++x)
            if (!dash || (x / dash) % 2 == 0) set(x, y, c);
    }
    void vline(int x, int y0, int y1, rgb c) {
        for (int y = y0; y <= y1; ++y) set(x, y, c);
    }
    void disc(int cx, int cy, int r, rgb c, bool filled) {
        for (int y = -r; y <= r; ++y)
            for (int x = -r; x <= r; ++x) {
                const int d = x * x + y * y;
                if (d <= r * r && (filled || d >= (r - 1.5) * (r - 1.5))) set(cx + x, cy + y, c);
            }
    }
    void box(int x0, int y0, int x1, int y1, rgb c) {
        for (int y = y0; y <= y1; ++y) hline(x0, x1, y, c);
    }
    // Text in the 3x5 font at `scale` pixels per font pixel; returns the width drawn.
    int text(int x, int y, const std::string &s, rgb c, int scale = 2, bool vertical = false);
    static int text_width(const std::string &s, int scale = 2) { return int(s.size()) * 4 * scale; }
    const std::vector<unsigned char> &pixels() const { return px_; }

private:
    int w_, h_;
    std::vector<unsigned char> px_;
};

// 3x5 glyphs, rows top to bottom, '#' = ink.
const std::map<char, std::array<const char *, 5>> &font() {
    static const std::map<char, std::array<const char *, 5>> f = {
        {'0', {"###", "#.#", "#.#", "#.#", "###"}}, {'1', {".#.", "##.", ".#.", ".#.", "###"}},
        {'2', {"###", "..#", "###", "#..", "###"}}, {'3', {"###", "..#", ".##", "..#", "###"}},
        {'4', {"#.#", "#.#", "###", "..#", "..#"}}, {'5', {"###", "#..", "###", "..#", "###"}},
        {'6', {"###", "#..", "###", "#.#", "###"}}, {'7', {"###", "..#", ".#.", ".#.", ".#."}},
        {'8', {"###", "#.#", "###", "#.#", "###"}}, {'9', {"###", "#.#", "###", "..#", "###"}},
        {'A', {".#.", "#.#", "###", "#.#", "#.#"}}, {'B', {"##.", "#.#", "##.", "#.#", "##."}},
        {'C', {".##", "#..", "#..", "#..", ".##"}}, {'D', {"##.", "#.#", "#.#", "#.#", "##."}},
        {'E', {"###", "#..", "##.", "#..", "###"}}, {'F', {"###", "#..", "##.", "#..", "#.."}},
        {'G', {".##", "#..", "#.#", "#.#", ".##"}}, {'H', {"#.#", "#.#", "###", "#.#", "#.#"}},
        {'I', {"###", ".#.", ".#.", ".#.", "###"}}, {'J', {"..#", "..#", "..#", "#.#", ".#."}},
        {'K', {"#.#", "#.#", "##.", "#.#", "#.#"}}, {'L', {"#..", "#..", "#..", "#..", "###"}},
        {'M', {"#.#", "###", "###", "#.#", "#.#"}}, {'N', {"##.", "#.#", "#.#", "#.#", "#.#"}},
        {'O', {".#.", "#.#", "#.#", "#.#", ".#."}}, {'P', {"##.", "#.#", "##.", "#..", "#.."}},
        {'Q', {".#.", "#.#", "#.#", "##.", ".##"}}, {'R', {"##.", "#.#", "##.", "#.#", "#.#"}},
        {'S', {".##", "#..", ".#.", "..#", "##."}}, {'T', {"###", ".#.", ".#.", ".#.", ".#."}},
        {'U', {"#.#", "#.#", "#.#", "#.#", "###"}}, {'V', {"#.#", "#.#", "#.#", "#.#", ".#."}},
        {'W', {"#.#", "#.#", "###", "###", "#.#"}}, {'X', {"#.#", "#.#", ".#.", "#.#", "#.#"}},
        {'Y', {"#.#", "#.#", ".#.", ".#.", ".#."}}, {'Z', {"###", "..#", ".#.", "#..", "###"}},
        {'.', {"...", "...", "...", "...", ".#."}}, {'-', {"...", "...", "###", "...", "..."}},
        {'_', {"...", "...", "...", "...", "###"}}, {'(', {"..#", ".#.", ".#.", ".#.", "..#"}},
        {')', {"#..", ".#.", ".#.", ".#.", "#.."}}, {':', {"...", ".#.", "...", ".#.", "..."}},
        {'+', {"...", ".#.", "###", ".#.", "..."}}, {'=', {"...", "###", "...", "###", "..."}},
        {'/', {"..#", "..#", ".#.", "#..", "#.."}}, {',', {"...", "...", "...", ".#.", "#.."}},
        {'>', {"#..", ".#.", "..#", ".#.", "#.."}}, {'<', {"..#", ".#.", "#..", ".#.", "..#"}},
    };
    return f;
}

int canvas::text(int x, int y, const std::string &s, rgb c, int scale, bool vertical) {
    int pos = 0;
    for (char ch : s) {
        const char key = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
        auto it = font().find(key);
        if (it != font().end())
            for (int r = 0; r < 5; ++r)
                for (int col = 0; col < 3; ++col)
                    if (it->second[r][col] == '#')
                        for (int dy = 0; dy < scale; ++dy)
                            for (int dx = 0; dx < scale; ++dx) {
                                // Vertical text reads bottom to top (rotated 90 degrees left).
                                if (vertical) set(x + r * scale + dy, y - (pos + col * scale + dx), c);
                                else set(x + pos + col * scale + dx, y + r * scale + dy, c);
                            }
        pos += 4 * scale;
    }
    return pos;
}

std::string tick_text(double v) {
    if (v == 0) return "0";
    const double a = std::fabs(v);
    if (a >= 1e-2 && a < 1e4) return fmt::format("{:.3g}", v);
    return fmt::format("{:.0e}", v);
}

} // namespace

std::vector<unsigned char> encode_png_rgb(const std::vector<unsigned char> &rgb_rows, int width, int height) {
    if (width <= 0 || height <= 0 || rgb_rows.size() != size_t(width) * height * 3)
        fail("png: {} bytes do not make a {}x{} RGB image", rgb_rows.size(), width, height);
    std::vector<unsigned char> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    std::vector<unsigned char> ihdr;
    put_u32(ihdr, uint32_t(width));
    put_u32(ihdr, uint32_t(height));
    ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0}); // 8-bit, RGB, deflate, no filter method, no interlace
    put_chunk(out, "IHDR", ihdr);
    std::vector<unsigned char> raw;
    raw.reserve(size_t(height) * (size_t(width) * 3 + 1));
    for (int y = 0; y < height; ++y) {
        raw.push_back(0); // filter type None
        raw.insert(raw.end(), rgb_rows.begin() + long(size_t(y) * width * 3), rgb_rows.begin() + long(size_t(y + 1) * width * 3));
    }
    put_chunk(out, "IDAT", zlib_stream(raw));
    put_chunk(out, "IEND", {});
    return out;
}

void write_scatter_png(const std::filesystem::path &file, const std::vector<plot_series> &series, const plot_options &o) {
    static const rgb palette[] = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40},
                                  {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127}};
    const rgb black{0, 0, 0}, grey{200, 200, 200}, red{214, 39, 40};
    canvas c(o.width, o.height);
    const int left = 90, right = o.width - 170, top = 40, bottom = o.height - 60;

    double xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    bool all_positive = true;
    auto take_y = [&](double y) {
        if (!std::isfinite(y)) return;
        ymin = std::min(ymin, y), ymax = std::max(ymax, y);
        all_positive = all_positive && y > 0;
    };
    for (const auto &s : series)
        for (const auto &p : s.points) {
            xmin = std::min(xmin, p.x), xmax = std::max(xmax, p.x);
            take_y(p.y);
        }
    if (o.hline) take_y(*o.hline);
    if (!std::isfinite(xmin)) xmin = 0, xmax = 1;
    if (!std::isfinite(ymin)) ymin = 0, ymax = 1;
    const bool log_y = o.log_y && all_positive;
    auto ty = [&](double y) { return log_y ? std::log10(y) : y; };
    double y0 = ty(ymin), y1 = ty(ymax);
    if (log_y) y0 = std::floor(y0), y1 = std::ceil(y1);
    if (y1 - y0 < 1e-12) y0 -= 0.5, y1 += 0.5;
    if (!log_y) {
        const double pad = 0.05 * (y1 - y0);
        y0 -= pad, y1 += pad;
    }
    const double x0 = xmin - 0.5, x1 = xmax + 0.5;
    auto px = [&](double x) { return left + int(std::lround((x - x0) / (x1 - x0) * (right - left))); };
    auto py = [&](double y) { return bottom - int(std::lround((ty(y) - y0) / (y1 - y0) * (bottom - top))); };

    // Grid and y ticks: decades on a log axis, 5 steps on a linear one.
    std::vector<double> yticks;
    if (log_y)
        for (double e = y0; e <= y1 + 1e-9; e += 1) yticks.push_back(std::pow(10.0, e));
    else
        for (int i = 0; i <= 5; ++i) yticks.push_back(y0 + (y1 - y0) * i / 5);
    for (double v : yticks) {
        const int y = py(v);
        c.hline(left, right, y, grey);
        const std::string t = tick_text(v);
        c.text(left - 8 - canvas::text_width(t), y - 5, t, black);
    }
    const int nx = int(xmax - xmin) + 1, step = std::max(1, nx / 16);
    for (int xi = int(xmin); xi <= int(xmax); xi += step) {
        const int x = px(xi);
        c.vline(x, bottom, bottom + 5, black);
        const std::string t = std::to_string(xi);
        c.text(x - canvas::text_width(t) / 2, bottom + 10, t, black);
    }
    c.hline(left, right, bottom, black);
    c.vline(left, top, bottom, black);
    if (o.hline) c.hline(left, right, py(*o.hline), red, 6);

    for (size_t si = 0; si < series.size(); ++si) {
        const rgb col = palette[si % 8];
        // Series are offset a little along x so that modules of one layer do not hide each other.
        const double dx = series.size() > 1 ? (double(si) / double(series.size() - 1) - 0.5) * 0.5 : 0.0;
        for (const auto &p : series[si].points)
            if (std::isfinite(p.y) && (!log_y || p.y > 0)) c.disc(px(p.x + dx), py(p.y), p.highlight ? 5 : 4, col, p.highlight);
        // Legend.
        const int ly = top + 10 + int(si) * 22;
        c.box(right + 20, ly, right + 32, ly + 10, col);
        c.text(right + 40, ly, series[si].label, black);
    }
    const int ly = top + 10 + int(series.size()) * 22 + 10;
    c.disc(right + 26, ly + 5, 5, black, true);
    c.text(right + 40, ly, "A8 (chosen)", black);
    c.disc(right + 26, ly + 27, 4, black, false);
    c.text(right + 40, ly + 22, "low bits", black);
    if (o.hline) {
        c.hline(right + 20, right + 32, ly + 49, red, 3);
        c.text(right + 40, ly + 44, "threshold", black);
    }

    c.text(left, 12, o.title, black, 3);
    c.text((left + right) / 2 - canvas::text_width(o.x_label) / 2, bottom + 32, o.x_label, black);
    c.text(14, (top + bottom) / 2 + canvas::text_width(o.y_label) / 2, o.y_label + (log_y ? " (log)" : ""), black, 2, true);

    const auto bytes = encode_png_rgb(c.pixels(), o.width, o.height);
    std::ofstream out(file, std::ios::binary);
    out.write(reinterpret_cast<const char *>(bytes.data()), std::streamsize(bytes.size()));
    if (!out) fail("cannot write {}", file.string());
}

} // namespace qb
