// A dependency-free scatter plot written as a PNG (RGB, 8 bit), for reports that `qbench run`
// produces without Python: the per-layer sensitivity plot of flexq. Text uses a built-in 3x5 pixel
// font (upper-case letters, digits and a few signs; lower case is drawn as upper case). The image
// is deflated with zlib when the build has it, else stored uncompressed (still a valid PNG).
#pragma once
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace qb {

struct plot_point {
    double x = 0, y = 0;
    bool highlight = false; // drawn filled (else as a ring)
};

struct plot_series {
    std::string label;
    std::vector<plot_point> points;
};

struct plot_options {
    std::string title, x_label, y_label;
    bool log_y = false;           // falls back to linear when a value is <= 0
    std::optional<double> hline;  // a dashed horizontal line (e.g. a threshold)
    int width = 960, height = 540;
};

// Throws qb::error naming the path when the file cannot be written.
void write_scatter_png(const std::filesystem::path &file, const std::vector<plot_series> &series, const plot_options &options);

// The PNG encoding alone (RGB rows, top to bottom), for tests: the bytes of a complete file.
std::vector<unsigned char> encode_png_rgb(const std::vector<unsigned char> &rgb, int width, int height);

} // namespace qb
