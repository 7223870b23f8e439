// Internal plotting toolkit over Cairo (report/ only): render one drawing to PNG + SVG, text,
// axes with "nice" ticks, lines, markers, legends. Coordinates are in logical pixels.
#pragma once

#include <cairo.h>

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace gg::report::detail {

struct Color {
  double r, g, b, a = 1.0;
};
inline constexpr Color kBlack{0.1, 0.1, 0.1};
inline constexpr Color kGrey{0.45, 0.45, 0.45};
inline constexpr Color kGrid{0.88, 0.88, 0.88};
// Tableau 10: distinguishable, and the order T1, T2, FLAIR, hard vote, soft vote is stable.
Color series_color(size_t i);

// Draws with `draw(cr)` on a width x height logical canvas (white background) and writes
// <stem>.png (at 2x, its pHYs chunk saying 144 dpi) and <stem>.svg atomically. Throws gg::Error
// on failure.
void render(const std::filesystem::path& stem, int width, int height,
            const std::function<void(cairo_t*)>& draw);

// The render scale a PNG records in its pHYs chunk (144 dpi -> 2); 1 when absent.
int png_scale(const std::string& png_bytes);

enum class HAlign { kLeft, kCenter, kRight };
enum class VAlign { kTop, kMiddle, kBaseline, kBottom };
struct Font {
  double size = 12;
  bool bold = false;
};
// Draws text anchored at (x, y); angle in radians (text rotated about the anchor).
void text(cairo_t* cr, const std::string& s, double x, double y, Font font, Color color,
          HAlign h = HAlign::kLeft, VAlign v = VAlign::kBaseline, double angle = 0);
double text_width(cairo_t* cr, const std::string& s, Font font);

void set_color(cairo_t* cr, Color c);
void line(cairo_t* cr, double x0, double y0, double x1, double y1, Color c, double width,
          const std::vector<double>& dash = {});

enum class Marker { kNone, kCircle, kSquare, kDiamond, kTriangle };
void marker(cairo_t* cr, Marker m, double x, double y, double size, Color c);

// "Nice" tick values (steps 1, 2, 2.5 or 5 x 10^k) covering [lo, hi] with about `target` ticks.
std::vector<double> nice_ticks(double lo, double hi, int target = 6);
double nice_ceiling(double v);  // smallest 1/2/2.5/5 x 10^k >= v
std::string tick_label(double v, double step);

// A plot area in logical pixels and the data range it shows.
struct Axes {
  double left, top, width, height;
  double xmin, xmax, ymin, ymax;
  double px(double x) const { return left + (x - xmin) / (xmax - xmin) * width; }
  double py(double y) const { return top + height - (y - ymin) / (ymax - ymin) * height; }
  double right() const { return left + width; }
  double bottom() const { return top + height; }
};
struct AxisLabels {
  std::string x, y;
  std::vector<double> xticks, yticks;
  std::string y_suffix;  // appended to y tick labels, e.g. "%"
};
// Frame, grid lines, tick labels and axis labels.
void draw_axes(cairo_t* cr, const Axes& ax, const AxisLabels& labels);
// Restricts drawing to the plot area until cairo_restore.
void clip_to(cairo_t* cr, const Axes& ax);

// A polyline through data points (NaN points break the line), clipped to the axes.
void polyline(cairo_t* cr, const Axes& ax, const std::vector<double>& x,
              const std::vector<double>& y, Color c, double width,
              const std::vector<double>& dash = {});

struct LegendEntry {
  std::string label;
  Color color;
  double line_width = 2;
  std::vector<double> dash = {};
  Marker marker = Marker::kNone;
};
enum class Corner { kTopLeft, kTopRight, kBottomLeft, kBottomRight };
// A boxed legend inside the axes at the corner. A label may hold tab-separated columns, which
// are aligned across entries.
void legend(cairo_t* cr, const Axes& ax, const std::vector<LegendEntry>& entries, Corner corner,
            Font font = {12, false});

}  // namespace gg::report::detail
