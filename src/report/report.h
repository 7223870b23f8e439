// report: figures (PNG + SVG, drawn with Cairo) and a self-contained report.html.
//
// Every plot function writes <stem>.png (rendered at 2x for sharp text on high-density screens;
// its pHYs chunk says 144 dpi)
// and <stem>.svg, each atomically, creating the parent directory. They throw gg::Error (kRuntime)
// naming the file when Cairo or the disk fails, and kBadInput for data that cannot be drawn
// (e.g. an empty training log). Cairo types never appear in this header.
#pragma once

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "eval/eval.h"

namespace gg::report {

namespace fs = std::filesystem;

// One row of a training log (one CSV per sequence, written by the trainer), header:
//   iteration,epoch,images,train_loss,train_accuracy,val_loss,val_accuracy,learning_rate
// Accuracies are fractions in [0, 1]. val_* are empty on iterations without validation
// (has_val = false; val_loss / val_accuracy are then NaN).
struct TrainingLogRow {
  int iteration = 0, epoch = 0;
  long images = 0;
  double train_loss = 0, train_accuracy = 0, val_loss = 0, val_accuracy = 0, learning_rate = 0;
  bool has_val = false;
};
// Throws kBadInput naming the file and line for a wrong header, field count or number, an
// accuracy outside [0, 1], or a file with no rows.
std::vector<TrainingLogRow> read_training_log(const fs::path& csv);

// The paper's convergence figure, after MATLAB's training-progress plot: an accuracy panel (%)
// and a loss panel against iteration; training as the per-mini-batch values (faint) and their
// exponential moving average (bold), validation as a dashed black line with markers; alternate
// epochs shaded and labelled.
void plot_training_curves(const std::vector<TrainingLogRow>& log, const std::string& title,
                          const fs::path& stem);

// ROC curves (one per entry, legend "name  AUC 0.951 [0.930, 0.972]") with the chance diagonal.
void plot_roc(const std::vector<std::pair<std::string, eval::BinaryMetrics>>& curves,
              const std::string& title, const fs::path& stem);

// A 2x2 confusion matrix (rows: true LGG, HGG; columns: predicted) with counts and row
// percentages, shaded by row percentage.
void plot_confusion(const eval::BinaryMetrics&, const std::string& title, const fs::path& stem);
// Several confusion matrices side by side, one per (name, metrics), under one title.
void plot_confusion_grid(const std::vector<std::pair<std::string, eval::BinaryMetrics>>& panels,
                         const std::string& title, const fs::path& stem);

// Reliability diagram: observed HGG fraction against mean predicted P(HGG) per bin, the
// diagonal of perfect calibration, legend with ECE and Brier; below it, the number of items per
// bin.
void plot_reliability(const std::vector<std::pair<std::string, eval::Calibration>>& curves,
                      const std::string& title, const fs::path& stem);

// Bars with confidence intervals, in groups side by side (e.g. slice level | patient level), one
// bar per series in each group (the same series in every group, coloured alike, with a legend
// below), each labelled with its value; a dashed horizontal reference line (e.g. chance). NaN
// values draw no bar ("n/a"); NaN bounds draw no whisker. y runs from 0 to 1.
struct IntervalBar {
  std::string series;
  double value = 0, lo = 0, hi = 0;
};
struct BarGroup {
  std::string name;
  std::vector<IntervalBar> bars;
};
void plot_interval_bars(const std::vector<BarGroup>& groups, const std::string& title,
                        const std::string& subtitle, const std::string& y_label, double reference,
                        const fs::path& stem);

// A captioned figure: the caption and the PNG file to embed.
struct FigureSection {
  std::string heading;                                    // e.g. "ROC curves"
  std::vector<std::pair<std::string, fs::path>> figures;  // caption, png
};

// Writes the standard set of figures for an evaluation into `dir` and returns them grouped as the
// report shows them: "Training curves" (one per (sequence name, log) in training_logs; may be
// empty), "ROC curves", "Confusion matrices", "Reliability" (each at patient and slice level).
std::vector<FigureSection> plot_evaluation(
    const eval::Evaluation& evaluation,
    const std::vector<std::pair<std::string, std::vector<TrainingLogRow>>>& training_logs,
    const fs::path& dir);

// report.html: self-contained (PNGs embedded as base64 data URIs, inline CSS, no external
// URLs; works offline). Sections, in order: title, notes, the summary table (Markdown rendered to
// HTML), each of `sections`, then `figures` under "Figures" (e.g. Grad-CAM overlays), then
// provenance (config_json pretty-printed; shown verbatim if it is not valid JSON). Each image is
// shown at its logical size (the plots' PNGs record their 2x scale in pHYs; a PNG without pHYs
// shows at its pixel size), never wider than the page.
struct ReportInputs {
  std::string title;
  std::string table_markdown;
  std::vector<std::pair<std::string, fs::path>> figures;  // caption, png: extra images
  std::string config_json;
  std::string notes;                    // plain text; blank lines separate paragraphs
  std::vector<FigureSection> sections;  // e.g. from plot_evaluation
};
// Throws kBadInput naming a figure that is missing or not a PNG; writes atomically.
void write_report_html(const ReportInputs&, const fs::path& html);

// Minimal Markdown to HTML for the results table: '#' headings, pipe tables, paragraphs.
// Text is HTML-escaped. Exposed for tests.
std::string markdown_to_html(const std::string& markdown);

}  // namespace gg::report
