// Figures and report.html: files exist, PNGs decode with the expected size, SVGs are SVG, the
// HTML embeds every image as a data URI and refers to nothing outside itself. Set
// GG_REPORT_DEMO_DIR to keep the demo's files (plausible fake data) for looking at them.
#include <cairo.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>

#include "common/error.h"
#include "common/files.h"
#include "report/report.h"
#include "testing/testing.h"

namespace gg::report {
namespace {

using gg::testing::TempDir;

// Plausible fake test predictions: 60 patients (45 HGG, 15 LGG) x 20 slices; each patient has a
// random offset and each sequence its own noise, FLAIR the most informative.
std::vector<eval::SlicePrediction> fake_predictions(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0, 1);
  std::vector<eval::SlicePrediction> out;
  const double separation[3] = {2.2, 2.0, 2.8};
  for (int patient = 0; patient < 60; ++patient) {
    const int label = patient < 45 ? 1 : 0;
    const double offset = 1.2 * noise(rng);
    for (int k = 0; k < 20; ++k) {
      eval::SlicePrediction s{"P" + std::to_string(patient), 60 + k, k, label, {}};
      for (int q = 0; q < 3; ++q) {
        const double logit = (label ? 1 : -1) * separation[q] + 1.0 + offset + 1.3 * noise(rng);
        s.p[q] = 1 / (1 + std::exp(-logit));
      }
      out.push_back(s);
    }
  }
  return out;
}

// A plausible fine-tuning log: 6 epochs of 120 iterations, validation every 30.
std::vector<TrainingLogRow> fake_log(uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0, 1);
  std::vector<TrainingLogRow> log;
  for (int it = 1; it <= 720; ++it) {
    TrainingLogRow r;
    r.iteration = it;
    r.epoch = (it - 1) / 120 + 1;
    r.images = it * 10L;
    const double progress = 1 - std::exp(-it / 150.0);
    r.train_loss = std::max(0.005, 0.7 * (1 - progress) + 0.06 + 0.08 * std::fabs(noise(rng)));
    r.train_accuracy =
        std::clamp(std::round(10 * (0.55 + 0.43 * progress + 0.08 * noise(rng))) / 10, 0.0,
                   1.0);  // a mini-batch of 10
    r.learning_rate = 1e-4;
    r.has_val = it % 30 == 0 || it == 1;
    r.val_loss = r.has_val ? 0.62 * (1 - progress) + 0.1 + 0.02 * noise(rng) : std::nan("");
    r.val_accuracy =
        r.has_val ? std::min(1.0, 0.6 + 0.35 * progress + 0.01 * noise(rng)) : std::nan("");
    log.push_back(r);
  }
  return log;
}

void expect_png(const fs::path& png, int width, int height) {
  ASSERT_TRUE(fs::exists(png)) << png;
  const std::string bytes = read_file(png);
  ASSERT_EQ(bytes.compare(0, 8, "\x89PNG\r\n\x1a\n"), 0) << png;
  cairo_surface_t* s = cairo_image_surface_create_from_png(png.c_str());
  ASSERT_EQ(cairo_surface_status(s), CAIRO_STATUS_SUCCESS) << png;
  EXPECT_EQ(cairo_image_surface_get_width(s), width) << png;
  EXPECT_EQ(cairo_image_surface_get_height(s), height) << png;
  // Not blank: some pixel is far from white.
  cairo_surface_flush(s);
  const unsigned char* data = cairo_image_surface_get_data(s);
  const int stride = cairo_image_surface_get_stride(s);
  int dark = 0;
  for (int y = 0; y < height; y += 3)
    for (int x = 0; x < width; x += 3)
      if (data[y * stride + 4 * x + 1] < 128) ++dark;
  EXPECT_GT(dark, 100) << png;
  cairo_surface_destroy(s);
}

void expect_svg(const fs::path& svg) {
  ASSERT_TRUE(fs::exists(svg)) << svg;
  const std::string text = read_file(svg);
  EXPECT_EQ(text.rfind("<?xml", 0), 0u) << svg;
  EXPECT_NE(text.find("<svg"), std::string::npos) << svg;
  EXPECT_NE(text.find("</svg>"), std::string::npos) << svg;
}

fs::path demo_dir(const TempDir& tmp) {
  const char* keep = std::getenv("GG_REPORT_DEMO_DIR");
  return keep && *keep ? fs::path(keep) : tmp.path();
}

TEST(Plots, TrainingCurvesWritePngAndSvg) {
  TempDir tmp;
  const fs::path dir = demo_dir(tmp);
  plot_training_curves(fake_log(7), "Training progress: FLAIR", dir / "training_flair");
  expect_png(dir / "training_flair.png", 1800, 1330);
  expect_svg(dir / "training_flair.svg");
}

TEST(Plots, TrainingCurvesWithoutValidationAndEmpty) {
  TempDir tmp;
  std::vector<TrainingLogRow> log = fake_log(3);
  log.resize(40);
  for (TrainingLogRow& r : log) r.has_val = false;
  plot_training_curves(log, "No validation", tmp / "t");
  expect_png(tmp / "t.png", 1800, 1330);
  EXPECT_THROW(plot_training_curves({}, "empty", tmp / "e"), gg::Error);
}

TEST(Plots, EvaluationFiguresAndReport) {
  TempDir tmp;
  const fs::path dir = demo_dir(tmp);
  const eval::Evaluation e =
      eval::evaluate(fake_predictions(11), "patient-level split (no leakage)");
  const std::vector<FigureSection> sections =
      plot_evaluation(e, {{"T1", fake_log(1)}, {"T2", fake_log(2)}, {"FLAIR", fake_log(3)}}, dir);
  ASSERT_EQ(sections.size(), 4u);
  EXPECT_EQ(sections[0].heading, "Training curves");
  EXPECT_EQ(sections[1].heading, "ROC curves");
  EXPECT_EQ(sections[2].heading, "Confusion matrices");
  EXPECT_EQ(sections[3].heading, "Reliability");
  int figures = 0;
  for (const FigureSection& s : sections) {
    for (const auto& [caption, png] : s.figures) {
      ++figures;
      EXPECT_FALSE(caption.empty());
      ASSERT_TRUE(fs::exists(png)) << png;
      fs::path svg = png;
      expect_svg(svg.replace_extension(".svg"));
    }
  }
  EXPECT_EQ(figures, 9);  // 3 training + 2 ROC + 2 confusion + 2 reliability
  expect_png(dir / "roc_slice.png", 2120, 1220);
  expect_png(dir / "reliability_patient.png", 1280, 1520);
  expect_png(dir / "confusion_slice.png", 2 * (3 * 310 + 40), 2 * (150 + 335 + 200 + 75));

  plot_confusion(e.metrics.at(eval::Level::kPatient).at(eval::Scorer::kVoteHard),
                 "Hard vote · patient level", dir / "confusion_vote_hard");
  expect_png(dir / "confusion_vote_hard.png", 880, 900);

  ReportInputs in;
  in.title = "gliomagrade results <demo>";
  in.table_markdown = eval::table_markdown(e);
  in.sections = sections;
  in.figures = {{"Grad-CAM stand-in", dir / "confusion_vote_hard.png"}};
  in.config_json = R"({"seed": 42, "split": "patient", "sequences": ["t1", "t2", "flair"]})";
  in.notes = "Synthetic demo data: the numbers mean nothing.";
  write_report_html(in, dir / "report.html");
  const std::string html = read_file(dir / "report.html");
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("</html>"), std::string::npos);
  EXPECT_NE(html.find("<title>gliomagrade results &lt;demo&gt;</title>"), std::string::npos);
  EXPECT_NE(html.find("<th>AUC (95% CI)</th>"), std::string::npos);
  EXPECT_NE(html.find("<td>vote (hard majority)</td>"), std::string::npos);
  EXPECT_NE(html.find("&quot;seed&quot;: 42"), std::string::npos);  // pretty-printed config
  // Every image is embedded; nothing is fetched from elsewhere.
  int images = 0;
  for (size_t at = html.find("<img "); at != std::string::npos; at = html.find("<img ", at + 1)) {
    ++images;
    const size_t src = html.find("src=\"", at) + 5;
    EXPECT_EQ(html.compare(src, 33, "data:image/png;base64,iVBORw0KGgo"), 0);
  }
  EXPECT_EQ(images, 10);
  // Plots (rendered at 2x) are shown at their logical size; the extra figure at its pixel size.
  EXPECT_NE(
      html.find("<img alt=\"Patient level: ROC per sequence and for both votes\" width=\"1060\""),
      std::string::npos);
  EXPECT_NE(html.find("<img alt=\"Grad-CAM stand-in\" width=\"440\""), std::string::npos);
  EXPECT_EQ(html.find("<h2>Summary</h2>"), std::string::npos);  // the table has its own heading
  EXPECT_NE(html.find("<h2>Results: patient-level split (no leakage)</h2>"), std::string::npos);
  EXPECT_EQ(html.find("http:"), std::string::npos);
  EXPECT_EQ(html.find("https:"), std::string::npos);
  EXPECT_EQ(html.find("<link"), std::string::npos);
  EXPECT_EQ(html.find("<script"), std::string::npos);
}

TEST(Plots, DegenerateTestSetsStillDraw) {
  // One class only (AUC undefined) and a single patient: figures are drawn with "n/a", no throw.
  TempDir tmp;
  const eval::Evaluation e =
      eval::evaluate({{"H1", 0, 0, 1, {0.9, 0.2, 0.6}}, {"H1", 1, 1, 1, {0.8, 0.4, 1.0}}}, "tiny");
  const std::vector<FigureSection> sections = plot_evaluation(e, {}, tmp.path());
  ASSERT_EQ(sections.size(), 3u);
  expect_png(tmp / "roc_patient.png", 2120, 1220);
  expect_png(tmp / "reliability_slice.png", 1280, 1520);
  const std::string md = eval::table_markdown(e);
  EXPECT_NE(md.find("| T1 | n/a | 100.00 % | 100.00 % | n/a |"), std::string::npos) << md;
}

// Decodes base64 (for checking the embedding byte for byte).
std::string unbase64(const std::string& s) {
  std::string out;
  int bits = 0, acc = 0;
  for (char c : s) {
    const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char* p = std::strchr(table, c);
    if (c == '=' || !p) break;
    acc = (acc << 6) | static_cast<int>(p - table);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

TEST(ReportHtml, EmbedsTheExactPngBytes) {
  TempDir tmp;
  // Sizes 0, 1 and 2 mod 3 exercise the base64 padding.
  for (int extra = 0; extra < 3; ++extra) {
    std::string png = "\x89PNG\r\n\x1a\n" + std::string(30 + extra, 'x');
    png[9] = '\xff';
    write_file_atomic(tmp / "f.png", png);
    write_report_html({"t", "", {{"cap", tmp / "f.png"}}, "", "", {}}, tmp / "r.html");
    const std::string html = read_file(tmp / "r.html");
    const size_t at = html.find("base64,") + 7;
    EXPECT_EQ(unbase64(html.substr(at, html.find('"', at) - at)), png) << extra;
  }
}

TEST(ReportHtml, APngWithoutResolutionShowsAtItsPixelSize) {
  TempDir tmp;
  cairo_surface_t* s = cairo_image_surface_create(CAIRO_FORMAT_RGB24, 30, 20);
  ASSERT_EQ(cairo_surface_write_to_png(s, (tmp / "plain.png").c_str()), CAIRO_STATUS_SUCCESS);
  cairo_surface_destroy(s);
  write_report_html({"t", "", {{"plain", tmp / "plain.png"}}, "", "", {}}, tmp / "r.html");
  EXPECT_NE(read_file(tmp / "r.html").find("<img alt=\"plain\" width=\"30\""), std::string::npos);
}

TEST(ReportHtml, RejectsAMissingOrNonPngFigure) {
  TempDir tmp;
  write_file_atomic(tmp / "not.png", "GIF89a");
  EXPECT_THROW(write_report_html({"t", "", {{"c", tmp / "not.png"}}, "", "", {}}, tmp / "r.html"),
               gg::Error);
  EXPECT_THROW(write_report_html({"t", "", {{"c", tmp / "none.png"}}, "", "", {}}, tmp / "r.html"),
               gg::Error);
  EXPECT_FALSE(fs::exists(tmp / "r.html"));
}

TEST(MarkdownToHtml, HeadingsTablesParagraphs) {
  EXPECT_EQ(
      markdown_to_html("## Results: x & y\n\n| A | B |\n|---|---|\n| 1 | <2> |\n\nSome\ntext."),
      "<h2>Results: x &amp; y</h2>\n<table>\n<tr><th>A</th><th>B</th></tr>\n"
      "<tr><td>1</td><td>&lt;2&gt;</td></tr>\n</table>\n<p>Some text.</p>\n");
}

TEST(TrainingLog, ReadsRowsWithAndWithoutValidation) {
  TempDir tmp;
  write_file_atomic(tmp / "log.csv",
                    "iteration,epoch,images,train_loss,train_accuracy,val_loss,val_accuracy,"
                    "learning_rate\n1,1,10,0.69,0.5,0.7,0.45,0.0001\n2,1,20,0.6,0.7,,,0.0001\n");
  const std::vector<TrainingLogRow> log = read_training_log(tmp / "log.csv");
  ASSERT_EQ(log.size(), 2u);
  EXPECT_EQ(log[0].iteration, 1);
  EXPECT_EQ(log[0].images, 10);
  EXPECT_TRUE(log[0].has_val);
  EXPECT_EQ(log[0].val_accuracy, 0.45);
  EXPECT_FALSE(log[1].has_val);
  EXPECT_TRUE(std::isnan(log[1].val_loss));
  EXPECT_EQ(log[1].learning_rate, 1e-4);
}

TEST(TrainingLog, BadFilesNameTheLine) {
  TempDir tmp;
  const std::string header =
      "iteration,epoch,images,train_loss,train_accuracy,val_loss,val_accuracy,learning_rate\n";
  auto error_of = [&](const std::string& text) {
    write_file_atomic(tmp / "log.csv", text);
    try {
      read_training_log(tmp / "log.csv");
    } catch (const gg::Error& e) {
      return e.problem();
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of(header + "1,1,10,0.69,97.5,,,0.0001\n"),
            "line 2: accuracy '97.5' is not a fraction in [0, 1]");
  EXPECT_EQ(error_of(header + "1,1,10,0.69\n"), "line 2: 4 fields, expected 8");
  EXPECT_EQ(error_of(header + "1,1,10,nan,0.5,,,0.0001\n"),
            "line 2: field 4 'nan' is not a finite number");
  EXPECT_EQ(error_of(header), "no iterations in the training log");
  EXPECT_EQ(error_of("iter,loss\n"), "line 1: not a training-log header: 'iter,loss'");
}

}  // namespace
}  // namespace gg::report
