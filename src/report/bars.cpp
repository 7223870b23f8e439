// Grouped bars with confidence-interval whiskers (the leakage audit's figure).
#include <cmath>

#include "common/error.h"
#include "report/canvas.h"
#include "report/report.h"

namespace gg::report {

using namespace detail;

void plot_interval_bars(const std::vector<BarGroup>& groups, const std::string& title,
                        const std::string& subtitle, const std::string& y_label, double reference,
                        const fs::path& stem) {
  if (groups.empty() || groups.front().bars.empty())
    throw_bad_input(stem.string(), "no bars to plot");
  const size_t series = groups.front().bars.size();
  const int width = 980, height = 600;
  const Axes ax{80, 80, 860, 380, 0, double(groups.size()), 0, 1.0};
  render(stem, width, height, [&](cairo_t* cr) {
    text(cr, title, width / 2.0, 14, {17, true}, kBlack, HAlign::kCenter, VAlign::kTop);
    text(cr, subtitle, width / 2.0, 40, {12, false}, kGrey, HAlign::kCenter, VAlign::kTop);
    draw_axes(cr, ax, {"", y_label, {}, nice_ticks(0, 1, 5), ""});
    const double group_width = ax.width / double(groups.size());
    const double bar_width = group_width * 0.8 / double(series);
    for (size_t g = 0; g < groups.size(); ++g) {
      const double x0 = ax.left + group_width * (double(g) + 0.1);
      text(cr, groups[g].name, ax.left + group_width * (double(g) + 0.5), ax.bottom() + 8,
           {13, true}, kBlack, HAlign::kCenter, VAlign::kTop);
      for (size_t k = 0; k < groups[g].bars.size() && k < series; ++k) {
        const IntervalBar& b = groups[g].bars[k];
        const double left = x0 + bar_width * double(k) + 3, w = bar_width - 6;
        const double cx = left + w / 2;
        if (!std::isfinite(b.value)) {
          text(cr, "n/a", cx, ax.py(0) - 4, {11, false}, kGrey, HAlign::kCenter, VAlign::kBottom);
          continue;
        }
        const Color c = series_color(k);
        cairo_save(cr);
        cairo_rectangle(cr, left, ax.py(b.value), w, ax.py(0) - ax.py(b.value));
        set_color(cr, Color{c.r, c.g, c.b, 0.85});
        cairo_fill(cr);
        cairo_restore(cr);
        double label_y = ax.py(b.value);
        if (std::isfinite(b.lo) && std::isfinite(b.hi)) {
          line(cr, cx, ax.py(b.lo), cx, ax.py(b.hi), kBlack, 1.5);
          line(cr, cx - 6, ax.py(b.lo), cx + 6, ax.py(b.lo), kBlack, 1.5);
          line(cr, cx - 6, ax.py(b.hi), cx + 6, ax.py(b.hi), kBlack, 1.5);
          label_y = std::min(label_y, ax.py(b.hi));
        }
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.3f", b.value);
        text(cr, buf, cx, label_y - 4, {11, true}, kBlack, HAlign::kCenter, VAlign::kBottom);
      }
    }
    line(cr, ax.left, ax.py(reference), ax.right(), ax.py(reference), kGrey, 1.5, {6, 4});
    // Legend below the axes, one row per series.
    for (size_t k = 0; k < series; ++k) {
      const double y = ax.bottom() + 40 + 20 * double(k);
      const Color c = series_color(k);
      cairo_save(cr);
      cairo_rectangle(cr, ax.left, y - 6, 22, 12);
      set_color(cr, c);
      cairo_fill(cr);
      cairo_restore(cr);
      text(cr, groups.front().bars[k].series, ax.left + 30, y, {12, false}, kBlack, HAlign::kLeft,
           VAlign::kMiddle);
    }
  });
}

}  // namespace gg::report
