// Plotting toolkit over Cairo: surfaces, text, axes, ticks, legends.
#include "report/canvas.h"

#include <cairo-svg.h>
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>

#include "common/error.h"
#include "common/files.h"

namespace gg::report::detail {

namespace {

constexpr double kPngScale = 2.0;
constexpr const char* kFontFamily = "DejaVu Sans";

cairo_status_t append_to_string(void* closure, const unsigned char* data, unsigned int length) {
  static_cast<std::string*>(closure)->append(reinterpret_cast<const char*>(data), length);
  return CAIRO_STATUS_SUCCESS;
}

void check(cairo_status_t status, const std::filesystem::path& file) {
  if (status != CAIRO_STATUS_SUCCESS)
    throw_runtime(file.string(), std::string("drawing failed: ") + cairo_status_to_string(status));
}

uint32_t read_be32(const std::string& b, size_t at) {
  return static_cast<uint32_t>(static_cast<unsigned char>(b[at])) << 24 |
         static_cast<uint32_t>(static_cast<unsigned char>(b[at + 1])) << 16 |
         static_cast<uint32_t>(static_cast<unsigned char>(b[at + 2])) << 8 |
         static_cast<uint32_t>(static_cast<unsigned char>(b[at + 3]));
}

void append_be32(std::string& b, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) b += static_cast<char>((v >> shift) & 0xff);
}

// Records the render scale in the PNG as its resolution (pHYs: 72 dpi per 1x), so that the
// report shows a 2x image at its logical size. Inserted right after IHDR (8 + 25 bytes).
std::string with_resolution(const std::string& png, double scale) {
  const uint32_t pixels_per_metre = static_cast<uint32_t>(std::lround(scale * 72 / 0.0254));
  std::string chunk = "pHYs";
  append_be32(chunk, pixels_per_metre);
  append_be32(chunk, pixels_per_metre);
  chunk += '\x01';  // unit: metre
  std::string out = png.substr(0, 33);
  append_be32(out, 9);
  out += chunk;
  append_be32(out, static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(chunk.data()),
                                               static_cast<uInt>(chunk.size()))));
  return out + png.substr(33);
}

void draw_on(cairo_surface_t* surface, double scale, int width, int height,
             const std::function<void(cairo_t*)>& draw, const std::filesystem::path& file) {
  cairo_t* cr = cairo_create(surface);
  cairo_scale(cr, scale, scale);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_rectangle(cr, 0, 0, width, height);
  cairo_fill(cr);
  draw(cr);
  const cairo_status_t status = cairo_status(cr);
  cairo_destroy(cr);
  check(status, file);
}

}  // namespace

int png_scale(const std::string& png) {
  // Walk the chunks before the image data for pHYs in pixels per metre.
  for (size_t at = 8; at + 12 <= png.size();) {
    const uint32_t length = read_be32(png, at);
    const std::string type = png.substr(at + 4, 4);
    if (type == "IDAT" || type == "IEND" || at + 12 + length > png.size()) break;
    if (type == "pHYs" && length == 9 && png[at + 16] == 1) {
      const long scale = std::lround(read_be32(png, at + 8) * 0.0254 / 72);
      return scale >= 1 && scale <= 8 ? static_cast<int>(scale) : 1;
    }
    at += 12 + length;
  }
  return 1;
}

Color series_color(size_t i) {
  static const Color palette[] = {
      {0.122, 0.467, 0.706}, {1.000, 0.498, 0.055}, {0.173, 0.627, 0.173}, {0.839, 0.153, 0.157},
      {0.580, 0.404, 0.741}, {0.549, 0.337, 0.294}, {0.890, 0.467, 0.761}, {0.498, 0.498, 0.498}};
  return palette[i % (sizeof palette / sizeof palette[0])];
}

void render(const std::filesystem::path& stem, int width, int height,
            const std::function<void(cairo_t*)>& draw) {
  const std::filesystem::path png = stem.string() + ".png", svg = stem.string() + ".svg";
  std::string png_bytes, svg_bytes;
  {
    cairo_surface_t* surface =
        cairo_image_surface_create(CAIRO_FORMAT_ARGB32, static_cast<int>(width * kPngScale),
                                   static_cast<int>(height * kPngScale));
    check(cairo_surface_status(surface), png);
    draw_on(surface, kPngScale, width, height, draw, png);
    const cairo_status_t status =
        cairo_surface_write_to_png_stream(surface, append_to_string, &png_bytes);
    cairo_surface_destroy(surface);
    check(status, png);
  }
  {
    cairo_surface_t* surface =
        cairo_svg_surface_create_for_stream(append_to_string, &svg_bytes, width, height);
    check(cairo_surface_status(surface), svg);
    draw_on(surface, 1.0, width, height, draw, svg);
    cairo_surface_finish(surface);
    const cairo_status_t status = cairo_surface_status(surface);
    cairo_surface_destroy(surface);
    check(status, svg);
  }
  write_file_atomic(png, with_resolution(png_bytes, kPngScale));
  write_file_atomic(svg, svg_bytes);
}

void set_color(cairo_t* cr, Color c) { cairo_set_source_rgba(cr, c.r, c.g, c.b, c.a); }

static void select_font(cairo_t* cr, Font font) {
  cairo_select_font_face(cr, kFontFamily, CAIRO_FONT_SLANT_NORMAL,
                         font.bold ? CAIRO_FONT_WEIGHT_BOLD : CAIRO_FONT_WEIGHT_NORMAL);
  cairo_set_font_size(cr, font.size);
}

double text_width(cairo_t* cr, const std::string& s, Font font) {
  select_font(cr, font);
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  return e.x_advance;
}

void text(cairo_t* cr, const std::string& s, double x, double y, Font font, Color color, HAlign h,
          VAlign v, double angle) {
  select_font(cr, font);
  cairo_text_extents_t e;
  cairo_text_extents(cr, s.c_str(), &e);
  cairo_font_extents_t fe;
  cairo_font_extents(cr, &fe);
  double dx = 0, dy = 0;
  if (h == HAlign::kCenter) dx = -e.x_advance / 2;
  if (h == HAlign::kRight) dx = -e.x_advance;
  // Align on the font's ascent/descent, not the string's ink, so labels line up.
  if (v == VAlign::kTop) dy = fe.ascent;
  if (v == VAlign::kMiddle) dy = (fe.ascent - fe.descent) / 2;
  if (v == VAlign::kBottom) dy = -fe.descent;
  cairo_save(cr);
  cairo_translate(cr, x, y);
  cairo_rotate(cr, angle);
  cairo_move_to(cr, dx, dy);
  set_color(cr, color);
  cairo_show_text(cr, s.c_str());
  cairo_restore(cr);
}

void line(cairo_t* cr, double x0, double y0, double x1, double y1, Color c, double width,
          const std::vector<double>& dash) {
  cairo_save(cr);
  set_color(cr, c);
  cairo_set_line_width(cr, width);
  cairo_set_dash(cr, dash.data(), static_cast<int>(dash.size()), 0);
  cairo_move_to(cr, x0, y0);
  cairo_line_to(cr, x1, y1);
  cairo_stroke(cr);
  cairo_restore(cr);
}

void marker(cairo_t* cr, Marker m, double x, double y, double size, Color c) {
  if (m == Marker::kNone) return;
  const double r = size / 2;
  cairo_save(cr);
  cairo_new_path(cr);
  switch (m) {
    case Marker::kCircle:
      cairo_arc(cr, x, y, r, 0, 2 * M_PI);
      break;
    case Marker::kSquare:
      cairo_rectangle(cr, x - r * 0.9, y - r * 0.9, 1.8 * r, 1.8 * r);
      break;
    case Marker::kDiamond:
      cairo_move_to(cr, x, y - r * 1.2);
      cairo_line_to(cr, x + r, y);
      cairo_line_to(cr, x, y + r * 1.2);
      cairo_line_to(cr, x - r, y);
      cairo_close_path(cr);
      break;
    case Marker::kTriangle:
      cairo_move_to(cr, x, y - r * 1.2);
      cairo_line_to(cr, x + r * 1.1, y + r * 0.8);
      cairo_line_to(cr, x - r * 1.1, y + r * 0.8);
      cairo_close_path(cr);
      break;
    case Marker::kNone:
      break;
  }
  set_color(cr, c);
  cairo_fill_preserve(cr);
  cairo_set_source_rgb(cr, 1, 1, 1);
  cairo_set_line_width(cr, 1);
  cairo_stroke(cr);
  cairo_restore(cr);
}

double nice_ceiling(double v) {
  if (!(v > 0)) return 1;
  const double p = std::pow(10.0, std::floor(std::log10(v)));
  for (double m : {1.0, 2.0, 2.5, 5.0, 10.0})
    if (m * p >= v * (1 - 1e-12)) return m * p;
  return 10 * p;
}

std::vector<double> nice_ticks(double lo, double hi, int target) {
  if (!(hi > lo)) return {lo};
  const double step = nice_ceiling((hi - lo) / std::max(1, target));
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step)
    ticks.push_back(std::fabs(t) < step * 1e-9 ? 0.0 : t);
  return ticks;
}

std::string tick_label(double v, double step) {
  int decimals = 0;
  while (decimals < 6 && std::fabs(step * std::pow(10.0, decimals) -
                                   std::round(step * std::pow(10.0, decimals))) > 1e-6)
    ++decimals;
  if (std::fabs(v) < std::fabs(step) * 1e-9) v = 0;  // no "-0.0"
  char buf[32];
  if (std::fabs(v) >= 1e5) {
    std::snprintf(buf, sizeof buf, "%.0fk", v / 1000);
  } else {
    std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  }
  return buf;
}

void draw_axes(cairo_t* cr, const Axes& ax, const AxisLabels& labels) {
  const Font tick_font{11, false}, label_font{13, false};
  const double xstep = labels.xticks.size() > 1 ? labels.xticks[1] - labels.xticks[0] : 1;
  const double ystep = labels.yticks.size() > 1 ? labels.yticks[1] - labels.yticks[0] : 1;
  double widest_ytick = 0;
  for (double t : labels.xticks) {
    const double x = ax.px(t);
    if (x < ax.left - 0.5 || x > ax.right() + 0.5) continue;
    line(cr, x, ax.top, x, ax.bottom(), kGrid, 1);
    line(cr, x, ax.bottom(), x, ax.bottom() + 4, kGrey, 1);
    text(cr, tick_label(t, xstep), x, ax.bottom() + 7, tick_font, kBlack, HAlign::kCenter,
         VAlign::kTop);
  }
  for (double t : labels.yticks) {
    const double y = ax.py(t);
    if (y < ax.top - 0.5 || y > ax.bottom() + 0.5) continue;
    line(cr, ax.left, y, ax.right(), y, kGrid, 1);
    line(cr, ax.left - 4, y, ax.left, y, kGrey, 1);
    const std::string s = tick_label(t, ystep) + labels.y_suffix;
    widest_ytick = std::max(widest_ytick, text_width(cr, s, tick_font));
    text(cr, s, ax.left - 7, y, tick_font, kBlack, HAlign::kRight, VAlign::kMiddle);
  }
  cairo_save(cr);
  set_color(cr, kGrey);
  cairo_set_line_width(cr, 1);
  cairo_rectangle(cr, ax.left, ax.top, ax.width, ax.height);
  cairo_stroke(cr);
  cairo_restore(cr);
  if (!labels.x.empty())
    text(cr, labels.x, ax.left + ax.width / 2, ax.bottom() + 24, label_font, kBlack,
         HAlign::kCenter, VAlign::kTop);
  if (!labels.y.empty())
    text(cr, labels.y, ax.left - widest_ytick - 14, ax.top + ax.height / 2, label_font, kBlack,
         HAlign::kCenter, VAlign::kBottom, -M_PI / 2);
}

void clip_to(cairo_t* cr, const Axes& ax) {
  cairo_save(cr);
  cairo_rectangle(cr, ax.left, ax.top, ax.width, ax.height);
  cairo_clip(cr);
}

void polyline(cairo_t* cr, const Axes& ax, const std::vector<double>& x,
              const std::vector<double>& y, Color c, double width,
              const std::vector<double>& dash) {
  clip_to(cr, ax);
  set_color(cr, c);
  cairo_set_line_width(cr, width);
  cairo_set_line_join(cr, CAIRO_LINE_JOIN_ROUND);
  cairo_set_dash(cr, dash.data(), static_cast<int>(dash.size()), 0);
  bool pen_down = false;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
    if (!std::isfinite(x[i]) || !std::isfinite(y[i])) {
      pen_down = false;
      continue;
    }
    if (pen_down)
      cairo_line_to(cr, ax.px(x[i]), ax.py(y[i]));
    else
      cairo_move_to(cr, ax.px(x[i]), ax.py(y[i]));
    pen_down = true;
  }
  cairo_stroke(cr);
  cairo_restore(cr);
}

void legend(cairo_t* cr, const Axes& ax, const std::vector<LegendEntry>& entries, Corner corner,
            Font font) {
  if (entries.empty()) return;
  // Labels may hold tab-separated columns ("T1\tAUC 0.95"): each column is left-aligned.
  std::vector<std::vector<std::string>> cells;
  std::vector<double> column_width;
  for (const LegendEntry& e : entries) {
    std::vector<std::string> row;
    size_t start = 0;
    for (size_t tab; (tab = e.label.find('\t', start)) != std::string::npos; start = tab + 1)
      row.push_back(e.label.substr(start, tab - start));
    row.push_back(e.label.substr(start));
    if (column_width.size() < row.size()) column_width.resize(row.size(), 0);
    for (size_t c = 0; c < row.size(); ++c)
      column_width[c] = std::max(column_width[c], text_width(cr, row[c], font));
    cells.push_back(row);
  }
  const double row_h = font.size * 1.55, swatch = 26, pad = 8, gap = 14;
  double text_w = 0;
  for (double w : column_width) text_w += w + gap;
  const double w = pad * 2 + swatch + 8 + text_w - gap;
  const double h = pad * 2 + row_h * entries.size() - (row_h - font.size) + 2;
  const bool right = corner == Corner::kTopRight || corner == Corner::kBottomRight;
  const bool bottom = corner == Corner::kBottomLeft || corner == Corner::kBottomRight;
  const double x = right ? ax.right() - w - 10 : ax.left + 10;
  const double y = bottom ? ax.bottom() - h - 10 : ax.top + 10;
  cairo_save(cr);
  cairo_rectangle(cr, x, y, w, h);
  cairo_set_source_rgba(cr, 1, 1, 1, 0.9);
  cairo_fill_preserve(cr);
  set_color(cr, Color{0.75, 0.75, 0.75});
  cairo_set_line_width(cr, 1);
  cairo_stroke(cr);
  cairo_restore(cr);
  for (size_t i = 0; i < entries.size(); ++i) {
    const LegendEntry& e = entries[i];
    const double cy = y + pad + font.size / 2 + 1 + i * row_h;
    if (e.line_width > 0)
      line(cr, x + pad, cy, x + pad + swatch, cy, e.color, e.line_width, e.dash);
    marker(cr, e.marker, x + pad + swatch / 2, cy, 7, e.color);
    double cx = x + pad + swatch + 8;
    for (size_t c = 0; c < cells[i].size(); ++c) {
      text(cr, cells[i][c], cx, cy, font, kBlack, HAlign::kLeft, VAlign::kMiddle);
      cx += column_width[c] + gap;
    }
  }
}

}  // namespace gg::report::detail
