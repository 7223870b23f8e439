// The report's figures: training curves, ROC, confusion matrices, reliability.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "common/error.h"
#include "report/canvas.h"
#include "report/report.h"

namespace gg::report {

using namespace detail;

namespace {

const Font kTitleFont{16, true};
const Font kSubtitleFont{12, false};

std::string format(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}

void title_block(cairo_t* cr, double width, const std::string& title, const std::string& subtitle) {
  text(cr, title, width / 2, 14, kTitleFont, kBlack, HAlign::kCenter, VAlign::kTop);
  if (!subtitle.empty())
    text(cr, subtitle, width / 2, 38, kSubtitleFont, kGrey, HAlign::kCenter, VAlign::kTop);
}

// Exponential moving average with bias correction (as TensorBoard does), so the first values are
// not pulled towards 0. The window grows with the run so that a long run reads as a trend.
std::vector<double> smooth(const std::vector<double>& v) {
  const double window = std::clamp(v.size() / 25.0, 1.0, 50.0);
  const double w = 1 - 1 / window;
  std::vector<double> out(v.size());
  double acc = 0, norm = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    acc = w * acc + (1 - w) * v[i];
    norm = w * norm + (1 - w);
    out[i] = acc / norm;
  }
  return out;
}

// The 98th percentile: a robust top for the loss axis (early spikes are clipped, not squashing
// the rest of the curve).
double robust_max(std::vector<double> v) {
  v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }), v.end());
  if (v.empty()) return 1;
  std::sort(v.begin(), v.end());
  return v[static_cast<size_t>(0.98 * (v.size() - 1))];
}

struct Series {
  std::vector<double> iter, train, train_smooth, val_iter, val;
};

void draw_epoch_bands(cairo_t* cr, const Axes& ax, const std::vector<TrainingLogRow>& log,
                      bool with_labels) {
  // Contiguous runs of one epoch: [first iteration, last iteration].
  struct Band {
    int epoch;
    double from, to;
  };
  std::vector<Band> bands;
  for (const TrainingLogRow& r : log) {
    if (bands.empty() || bands.back().epoch != r.epoch) {
      const double from = bands.empty() ? ax.xmin : bands.back().to;
      bands.push_back({r.epoch, from, static_cast<double>(r.iteration)});
    }
    bands.back().to = r.iteration;
  }
  bands.back().to = ax.xmax;
  for (size_t i = 0; i < bands.size(); ++i) {
    const double x0 = ax.px(bands[i].from), x1 = ax.px(bands[i].to);
    if (i % 2 == 1) {
      cairo_save(cr);
      cairo_rectangle(cr, x0, ax.top, x1 - x0, ax.height);
      cairo_set_source_rgb(cr, 0.955, 0.955, 0.955);
      cairo_fill(cr);
      cairo_restore(cr);
    }
    const std::string label = (bands.size() <= 8 ? "epoch " : "") + std::to_string(bands[i].epoch);
    if (with_labels && text_width(cr, label, {10, false}) + 4 < x1 - x0)
      text(cr, label, (x0 + x1) / 2, ax.top - 4, {10, false}, kGrey, HAlign::kCenter,
           VAlign::kBottom);
  }
}

void training_panel(cairo_t* cr, const Axes& ax, const AxisLabels& labels,
                    const std::vector<TrainingLogRow>& log, const Series& s, bool top,
                    const std::string& val_label, const std::string& train_label) {
  draw_epoch_bands(cr, ax, log, top);
  draw_axes(cr, ax, labels);
  const Color train = series_color(0);
  polyline(cr, ax, s.iter, s.train, Color{train.r, train.g, train.b, 0.28}, 1);
  polyline(cr, ax, s.iter, s.train_smooth, train, 2.2);
  polyline(cr, ax, s.val_iter, s.val, kBlack, 1.6, {5, 3});
  clip_to(cr, ax);
  if (s.val.size() <= 60)
    for (size_t i = 0; i < s.val.size(); ++i)
      marker(cr, Marker::kCircle, ax.px(s.val_iter[i]), ax.py(s.val[i]), 7, kBlack);
  cairo_restore(cr);
  std::vector<LegendEntry> entries = {
      {train_label, train, 2.2},
      {"training, per mini-batch", Color{train.r, train.g, train.b, 0.35}, 1}};
  if (!s.val.empty()) entries.push_back({val_label, kBlack, 1.6, {5, 3}, Marker::kCircle});
  legend(cr, ax, entries, top ? Corner::kBottomRight : Corner::kTopRight, {11, false});
}

}  // namespace

void plot_training_curves(const std::vector<TrainingLogRow>& log, const std::string& title,
                          const fs::path& stem) {
  if (log.empty())
    throw_bad_input(stem.string(), "no training-log rows to plot", "check the training log CSV");
  Series acc, loss;
  for (const TrainingLogRow& r : log) {
    acc.iter.push_back(r.iteration);
    acc.train.push_back(100 * r.train_accuracy);
    loss.train.push_back(r.train_loss);
    if (r.has_val) {
      acc.val_iter.push_back(r.iteration);
      acc.val.push_back(100 * r.val_accuracy);
      loss.val.push_back(r.val_loss);
    }
  }
  loss.iter = acc.iter;
  loss.val_iter = acc.val_iter;
  acc.train_smooth = smooth(acc.train);
  loss.train_smooth = smooth(loss.train);

  const int width = 900, height = 665;
  double xmin = std::min(0.0, acc.iter.front()), xmax = acc.iter.back();
  if (xmax <= xmin) xmax = xmin + 1;
  // Top of the loss axis: the raw training loss's 98th percentile (early spikes are clipped), but
  // never below the smoothed curve or a validation point.
  double loss_peak = robust_max(loss.train);
  for (const std::vector<double>* v : {&loss.train_smooth, &loss.val})
    for (double x : *v)
      if (std::isfinite(x)) loss_peak = std::max(loss_peak, x);
  const double loss_top = nice_ceiling(1.05 * loss_peak);
  const Axes acc_ax{85, 80, width - 85 - 30.0, 235, xmin, xmax, 0, 100};
  const Axes loss_ax{85, 375, width - 85 - 30.0, 235, xmin, xmax, 0, loss_top};
  const std::vector<double> xticks = nice_ticks(xmin, xmax, 8);

  std::string subtitle =
      std::to_string(log.size()) + " iterations, " + std::to_string(log.back().epoch) + " epochs";
  if (!acc.val.empty())
    subtitle += format(" · final validation accuracy %.1f %%", acc.val.back()) +
                format(", loss %.3f", loss.val.back());
  render(stem, width, height, [&](cairo_t* cr) {
    title_block(cr, width, title, subtitle);
    training_panel(cr, acc_ax, {"", "accuracy", xticks, nice_ticks(0, 100, 5), " %"}, log, acc,
                   true, "validation", "training (smoothed)");
    training_panel(cr, loss_ax,
                   {"iteration", "loss (cross-entropy)", xticks, nice_ticks(0, loss_top, 5), ""},
                   log, loss, false, "validation", "training (smoothed)");
  });
}

namespace {

std::string auc_label(const eval::AucCi& a) {
  if (!std::isfinite(a.auc)) return "AUC n/a";
  std::string s = format("AUC %.3f", a.auc);
  s += std::isfinite(a.lo) ? format(" [%.3f", a.lo) + format("–%.3f]", a.hi)
                           : std::string(" [CI n/a: < 2 per class]");
  return s;
}

void roc_panel(cairo_t* cr, const Axes& ax,
               const std::vector<std::pair<std::string, eval::BinaryMetrics>>& curves,
               bool with_legend) {
  // Ticks on the unit square only (the axes extend a little beyond it).
  auto ticks = [](double lo, double hi) {
    const double step = hi - lo > 0.6 ? 0.2 : hi - lo > 0.3 ? 0.1 : 0.05;
    std::vector<double> t;
    for (double v = std::ceil(std::max(0.0, lo) / step - 1e-9) * step;
         v <= std::min(1.0, hi) + 1e-9; v += step)
      t.push_back(v);
    return t;
  };
  draw_axes(cr, ax,
            {"false positive rate (1 − specificity)", "true positive rate (sensitivity, HGG)",
             ticks(ax.xmin, ax.xmax), ticks(ax.ymin, ax.ymax), ""});
  polyline(cr, ax, {0, 1}, {0, 1}, kGrey, 1.2, {6, 4});
  std::vector<LegendEntry> entries;
  for (size_t i = 0; i < curves.size(); ++i) {
    std::vector<double> x, y;
    for (const eval::RocPoint& p : curves[i].second.roc) {
      x.push_back(p.fpr);
      y.push_back(p.tpr);
    }
    // Later curves are drawn thinner so that overlapping earlier ones stay visible.
    const double width = 2.6 - 0.25 * i;
    polyline(cr, ax, x, y, series_color(i), width);
    entries.push_back(
        {curves[i].first + "\t" + auc_label(curves[i].second.auc), series_color(i), width});
  }
  entries.push_back({"chance", kGrey, 1.2, {6, 4}});
  if (with_legend) legend(cr, ax, entries, Corner::kBottomRight, {11, false});
}

}  // namespace

void plot_roc(const std::vector<std::pair<std::string, eval::BinaryMetrics>>& curves,
              const std::string& title, const fs::path& stem) {
  if (curves.empty()) throw_bad_input(stem.string(), "no ROC curves to plot");
  const int width = 1060, height = 610;
  const eval::BinaryMetrics& first = curves.front().second;
  const std::string subtitle =
      std::to_string(first.n) + " items (" + std::to_string(first.positives) + " HGG, " +
      std::to_string(first.negatives) + " LGG) · AUC with DeLong 95% CI · positive class HGG";
  // A little margin beyond [0, 1] so that a curve along an edge (a perfect scorer) is not hidden
  // under the frame.
  const Axes full{90, 95, 440, 440, -0.015, 1.015, -0.015, 1.015};
  // The enlarged corner: [0, 0.25] x [0.75, 1] when every curve is good (AUC >= 0.9), else twice
  // that, where weaker curves still pass.
  double zoom_size = 0.25;
  for (const auto& [name, m] : curves)
    if (std::isfinite(m.auc.auc) && m.auc.auc < 0.9) zoom_size = 0.5;
  const Axes zoom{
      600, 95, 440, 440, -0.016 * zoom_size, zoom_size, 1 - zoom_size, 1 + 0.016 * zoom_size};
  render(stem, width, height, [&](cairo_t* cr) {
    title_block(cr, width, title, subtitle);
    text(cr, "whole curve", full.left + full.width / 2, full.top - 7, {12, true}, kBlack,
         HAlign::kCenter, VAlign::kBottom);
    text(cr, "top-left corner, enlarged", zoom.left + zoom.width / 2, zoom.top - 7, {12, true},
         kBlack, HAlign::kCenter, VAlign::kBottom);
    roc_panel(cr, full, curves, true);
    roc_panel(cr, zoom, curves, false);
  });
}

namespace {

// One 2x2 matrix with its top-left cell corner at (x, y).
void confusion_panel(cairo_t* cr, const eval::BinaryMetrics& m, const std::string& name, double x,
                     double y, double cell) {
  const int counts[2][2] = {{m.tn, m.fp}, {m.fn, m.tp}};  // rows: true LGG, HGG
  const char* classes[2] = {"LGG", "HGG"};
  const Color base = series_color(0);
  if (!name.empty())
    text(cr, name, x + cell, y - 52, {14, true}, kBlack, HAlign::kCenter, VAlign::kBottom);
  text(cr, "predicted grade", x + cell, y - 30, {12, false}, kGrey, HAlign::kCenter,
       VAlign::kBottom);
  text(cr, "true grade", x - 46, y + cell, {12, false}, kGrey, HAlign::kCenter, VAlign::kBottom,
       -M_PI / 2);
  for (int r = 0; r < 2; ++r) {
    const int row_total = counts[r][0] + counts[r][1];
    text(cr, classes[r], x + cell * r + cell / 2, y - 8, {12, true}, kBlack, HAlign::kCenter,
         VAlign::kBottom);
    text(cr, classes[r], x - 10, y + cell * r + cell / 2, {12, true}, kBlack, HAlign::kRight,
         VAlign::kMiddle);
    for (int c = 0; c < 2; ++c) {
      const double f = row_total > 0 ? static_cast<double>(counts[r][c]) / row_total : 0;
      const double cx = x + c * cell, cy = y + r * cell;
      cairo_save(cr);
      cairo_rectangle(cr, cx, cy, cell, cell);
      cairo_set_source_rgb(cr, 1 - f * (1 - base.r), 1 - f * (1 - base.g), 1 - f * (1 - base.b));
      cairo_fill_preserve(cr);
      set_color(cr, Color{0.7, 0.7, 0.7});
      cairo_set_line_width(cr, 1);
      cairo_stroke(cr);
      cairo_restore(cr);
      const Color ink = f > 0.55 ? Color{1, 1, 1} : kBlack;
      text(cr, std::to_string(counts[r][c]), cx + cell / 2, cy + cell / 2 - 2,
           {cell >= 120 ? 24.0 : 19.0, true}, ink, HAlign::kCenter, VAlign::kBottom);
      text(cr, row_total > 0 ? format("%.1f %%", 100 * f) : "n/a", cx + cell / 2, cy + cell / 2 + 4,
           {12, false}, ink, HAlign::kCenter, VAlign::kTop);
    }
  }
  const std::string summary = std::isfinite(m.accuracy)
                                  ? format("accuracy %.1f %%", 100 * m.accuracy)
                                  : std::string("accuracy n/a");
  text(cr, summary, x + cell, y + 2 * cell + 10, {12, false}, kBlack, HAlign::kCenter,
       VAlign::kTop);
  std::string rates;
  rates += std::isfinite(m.sensitivity) ? format("sensitivity %.1f %%", 100 * m.sensitivity)
                                        : "sensitivity n/a";
  rates += std::isfinite(m.specificity) ? format(" · specificity %.1f %%", 100 * m.specificity)
                                        : " · specificity n/a";
  text(cr, rates, x + cell, y + 2 * cell + 28, {11, false}, kGrey, HAlign::kCenter, VAlign::kTop);
}

}  // namespace

void plot_confusion(const eval::BinaryMetrics& m, const std::string& title, const fs::path& stem) {
  const int width = 440, height = 450;
  const double cell = 140;
  render(stem, width, height, [&](cairo_t* cr) {
    title_block(cr, width, title, "rows: true grade · percentages of the row");
    confusion_panel(cr, m, "", 110, 115, cell);
  });
}

void plot_confusion_grid(const std::vector<std::pair<std::string, eval::BinaryMetrics>>& panels,
                         const std::string& title, const fs::path& stem) {
  if (panels.empty()) throw_bad_input(stem.string(), "no confusion matrices to plot");
  // Rows of up to 3 panels keep the figure narrow enough to read when a page scales it down.
  const size_t per_row = std::min<size_t>(3, panels.size());
  const size_t rows = (panels.size() + per_row - 1) / per_row;
  const double cell = 100, pitch_x = 2 * cell + 110, pitch_y = 2 * cell + 135;
  const int width = static_cast<int>(per_row * pitch_x + 40);
  const int height = static_cast<int>(150 + (rows - 1) * pitch_y + 2 * cell + 75);
  render(stem, width, height, [&](cairo_t* cr) {
    title_block(cr, width, title, "rows: true grade · percentages of the row");
    for (size_t i = 0; i < panels.size(); ++i) {
      const size_t row = i / per_row, in_row = std::min(per_row, panels.size() - row * per_row);
      const double left = (width - in_row * pitch_x) / 2 + 80;
      confusion_panel(cr, panels[i].second, panels[i].first, left + (i % per_row) * pitch_x,
                      150 + row * pitch_y, cell);
    }
  });
}

void plot_reliability(const std::vector<std::pair<std::string, eval::Calibration>>& curves,
                      const std::string& title, const fs::path& stem) {
  if (curves.empty()) throw_bad_input(stem.string(), "no calibration curves to plot");
  const int width = 640, height = 760;
  const Axes rel{90, 75, 500, 440, -0.015, 1.015, -0.015, 1.015};
  int max_count = 1;
  for (const auto& [name, c] : curves)
    for (int k : c.bin_count) max_count = std::max(max_count, k);
  const double count_top = nice_ceiling(max_count * 1.05);
  const Axes hist{90, 600, 500, 100, -0.015, 1.015, 0, count_top};
  const Marker markers[] = {Marker::kCircle, Marker::kSquare, Marker::kDiamond, Marker::kTriangle};
  render(stem, width, height, [&](cairo_t* cr) {
    title_block(
        cr, width, title,
        "one point per bin of P(HGG) · below the diagonal: P(HGG) too high, above: too low");
    draw_axes(cr, rel,
              {"mean predicted P(HGG) in the bin", "observed fraction of HGG", nice_ticks(0, 1, 5),
               nice_ticks(0, 1, 5), ""});
    polyline(cr, rel, {0, 1}, {0, 1}, kGrey, 1.2, {6, 4});
    std::vector<LegendEntry> entries;
    for (size_t i = 0; i < curves.size(); ++i) {
      const eval::Calibration& c = curves[i].second;
      std::vector<double> x, y;
      for (int b = 0; b < c.bins; ++b) {
        if (c.bin_count[b] == 0) continue;
        x.push_back(c.bin_confidence[b]);
        y.push_back(c.bin_accuracy[b]);
      }
      polyline(cr, rel, x, y, series_color(i), 1.8);
      for (size_t k = 0; k < x.size(); ++k)
        marker(cr, markers[i % 4], rel.px(x[k]), rel.py(y[k]), 8, series_color(i));
      entries.push_back(
          {curves[i].first + format("\tECE %.3f", c.ece) + format("\tBrier %.3f", c.brier),
           series_color(i),
           1.8,
           {},
           markers[i % 4]});
    }
    entries.push_back({"perfect calibration", kGrey, 1.2, {6, 4}});
    legend(cr, rel, entries, Corner::kTopLeft, {11, false});

    draw_axes(cr, hist,
              {"predicted P(HGG) (10 bins)", "items per bin", nice_ticks(0, 1, 5),
               nice_ticks(0, count_top, 2), ""});
    for (size_t i = 0; i < curves.size(); ++i) {
      const eval::Calibration& c = curves[i].second;
      const double bin_w = 1.0 / c.bins, bar_w = bin_w * 0.8 / curves.size();
      for (int b = 0; b < c.bins; ++b) {
        if (c.bin_count[b] == 0) continue;
        const double x0 = b * bin_w + bin_w * 0.1 + i * bar_w;
        cairo_save(cr);
        cairo_rectangle(cr, hist.px(x0), hist.py(c.bin_count[b]), hist.px(x0 + bar_w) - hist.px(x0),
                        hist.py(0) - hist.py(c.bin_count[b]));
        set_color(cr, series_color(i));
        cairo_fill(cr);
        cairo_restore(cr);
      }
    }
  });
}

std::vector<FigureSection> plot_evaluation(
    const eval::Evaluation& evaluation,
    const std::vector<std::pair<std::string, std::vector<TrainingLogRow>>>& training_logs,
    const fs::path& dir) {
  std::vector<FigureSection> sections;
  auto png = [&](const std::string& stem) { return dir / (stem + ".png"); };
  if (!training_logs.empty()) {
    FigureSection s{"Training curves", {}};
    for (const auto& [name, log] : training_logs) {
      std::string stem = "training_" + name;
      std::transform(stem.begin(), stem.end(), stem.begin(),
                     [](unsigned char c) { return std::isalnum(c) ? std::tolower(c) : '_'; });
      plot_training_curves(log, "Training progress: " + name, dir / stem);
      s.figures.push_back(
          {name + ": accuracy and loss per iteration (training and validation)", png(stem)});
    }
    sections.push_back(s);
  }
  FigureSection roc{"ROC curves", {}}, confusion{"Confusion matrices", {}},
      reliability{"Reliability", {}};
  for (eval::Level level : {eval::Level::kPatient, eval::Level::kSlice}) {
    const auto it = evaluation.metrics.find(level);
    if (it == evaluation.metrics.end()) continue;
    const std::string lvl = eval::level_name(level);
    const std::string heading = (level == eval::Level::kPatient ? "Patient level" : "Slice level");
    std::vector<std::pair<std::string, eval::BinaryMetrics>> curves;
    std::vector<std::pair<std::string, eval::Calibration>> calibrations;
    for (const auto& [scorer, m] : it->second) {
      curves.emplace_back(eval::scorer_name(scorer), m);
      calibrations.emplace_back(eval::scorer_name(scorer), m.calibration);
    }
    plot_roc(curves, "ROC · " + heading + " · " + evaluation.protocol, dir / ("roc_" + lvl));
    roc.figures.push_back({heading + ": ROC per sequence and for both votes", png("roc_" + lvl)});
    plot_confusion_grid(curves, "Confusion matrices · " + heading, dir / ("confusion_" + lvl));
    confusion.figures.push_back({heading + ": threshold P(HGG) >= 0.5; the hard vote is the "
                                           "majority of the three labels",
                                 png("confusion_" + lvl)});
    plot_reliability(calibrations, "Reliability · " + heading, dir / ("reliability_" + lvl));
    reliability.figures.push_back(
        {heading + ": calibration of P(HGG) (10 bins)", png("reliability_" + lvl)});
  }
  for (FigureSection* s : {&roc, &confusion, &reliability})
    if (!s->figures.empty()) sections.push_back(*s);
  return sections;
}

}  // namespace gg::report
