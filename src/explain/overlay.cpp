// Heatmap overlays (OpenCV) and the report's Grad-CAM examples.
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "common/error.h"
#include "common/files.h"
#include "explain/explain.h"
#include "train/train.h"

namespace gg::explain {

namespace {

cv::Mat overlay_mat(const uint8_t* slice, const Heatmap& heat, double alpha) {
  const int s = heat.size;
  cv::Mat grey(s, s, CV_8U, const_cast<uint8_t*>(slice));
  cv::Mat heat_u8(s, s, CV_8U);
  for (int i = 0; i < s * s; ++i)
    heat_u8.data[i] =
        static_cast<uint8_t>(std::lround(std::clamp(heat.values[size_t(i)], 0.0f, 1.0f) * 255.0f));
  cv::Mat colour, grey_bgr;
  cv::applyColorMap(heat_u8, colour, cv::COLORMAP_JET);
  cv::cvtColor(grey, grey_bgr, cv::COLOR_GRAY2BGR);
  cv::Mat out(s, s, CV_8UC3);
  for (int i = 0; i < s * s; ++i) {
    const double a = alpha * heat.values[size_t(i)];
    for (int c = 0; c < 3; ++c)
      out.data[3 * i + c] = cv::saturate_cast<uint8_t>((1 - a) * grey_bgr.data[3 * i + c] +
                                                       a * colour.data[3 * i + c]);
  }
  return out;
}

// A white strip with one or two lines of black text above an image.
cv::Mat with_caption(const cv::Mat& image, const std::vector<std::string>& lines) {
  const int line_h = 18;
  cv::Mat out(image.rows + line_h * int(lines.size()) + 6, image.cols, CV_8UC3,
              cv::Scalar(255, 255, 255));
  for (size_t i = 0; i < lines.size(); ++i)
    cv::putText(out, lines[i], cv::Point(4, 14 + line_h * int(i)), cv::FONT_HERSHEY_SIMPLEX, 0.42,
                cv::Scalar(0, 0, 0), 1, cv::LINE_AA);
  image.copyTo(out(cv::Rect(0, out.rows - image.rows, image.cols, image.rows)));
  return out;
}

void write_png(const fs::path& png, const cv::Mat& image) {
  std::vector<uint8_t> bytes;
  if (!cv::imencode(".png", image, bytes)) throw_runtime(png.string(), "cannot encode PNG");
  write_file_atomic(png,
                    std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

const char* class_name(int c) { return c == kHgg ? "HGG" : "LGG"; }

}  // namespace

std::vector<uint8_t> overlay_bgr(const uint8_t* slice, const Heatmap& heat, double alpha) {
  const cv::Mat m = overlay_mat(slice, heat, alpha);
  return std::vector<uint8_t>(m.data, m.data + m.total() * 3);
}

void write_overlay_png(const fs::path& png, const uint8_t* slice, const Heatmap& heat,
                       const std::string& caption, double alpha) {
  write_png(png, with_caption(overlay_mat(slice, heat, alpha), {caption}));
}

double mass_inside(const Heatmap& heat, const std::vector<uint8_t>& inside) {
  double total = 0, in = 0;
  for (size_t i = 0; i < heat.values.size(); ++i) {
    total += heat.values[i];
    if (inside[i]) in += heat.values[i];
  }
  return total > 0 ? in / total : std::numeric_limits<double>::quiet_NaN();
}

std::vector<std::pair<std::string, fs::path>> explain_examples(const fs::path& bundle_dir,
                                                               const prep::SliceStore& store,
                                                               const data::Split& split,
                                                               data::Part part,
                                                               const fs::path& out_dir, int n) {
  // The middle slice of each patient in `part`, HGG and LGG patients taken in turn.
  std::map<std::string, int64_t> middle;
  std::map<std::string, io::Grade> grade;
  for (int64_t i : split.items_in(part)) {
    const auto& item = store.items[size_t(i)];
    if (item.rank == store.slices_per_patient / 2)
      middle[item.patient] = i, grade[item.patient] = item.grade;
  }
  std::vector<std::string> by_grade[2];
  for (const auto& [patient, row] : middle)
    by_grade[grade[patient] == io::Grade::kHGG ? 0 : 1].push_back(patient);
  std::vector<std::string> chosen;
  for (size_t k = 0; int(chosen.size()) < n && k < std::max(by_grade[0].size(), by_grade[1].size());
       ++k)
    for (auto& list : by_grade)
      if (k < list.size() && int(chosen.size()) < n) chosen.push_back(list[k]);

  std::vector<std::pair<std::string, fs::path>> out;
  if (chosen.empty()) return out;
  BundleModels bundle = load_bundle_models(bundle_dir);
  const std::vector<io::Sequence>& seqs = bundle.sequences;
  const std::vector<SliceModel>& models = bundle.models;
  const int size = store.size;
  for (const auto& patient : chosen) {
    std::vector<cv::Mat> panels;
    std::string caption =
        fmt::format("Grad-CAM (last inception block), {} (true {}), P(HGG):", patient,
                    io::grade_name(grade[patient]));
    for (size_t m = 0; m < models.size(); ++m) {
      std::vector<uint8_t> slice(size_t(size) * size_t(size));
      prep::read_slices(store, seqs[m], {middle[patient]}, slice.data());
      const Heatmap heat = models[m].grad_cam(slice.data(), size);
      caption += fmt::format(" {} {:.2f}", io::sequence_name(seqs[m]), heat.p_hgg);
      panels.push_back(
          with_caption(overlay_mat(slice.data(), heat, 0.5),
                       {fmt::format("{}  P(HGG) {:.2f}", io::sequence_name(seqs[m]), heat.p_hgg),
                        fmt::format("evidence for {}", class_name(heat.target_class))}));
    }
    cv::Mat row;
    cv::hconcat(panels, row);
    const fs::path png = out_dir / ("gradcam_" + patient + ".png");
    write_png(png, row);
    out.emplace_back(caption, png);
  }
  return out;
}

}  // namespace gg::explain
