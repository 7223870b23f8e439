// A PNG contact sheet of synthetic patients, so a person can judge the phantom at a glance.
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/files.h"
#include "synth/synth.h"

namespace gg::synth {

namespace {

constexpr int kTile = 200;   // pixels per image tile
constexpr int kHeader = 26;  // column titles
constexpr int kFooter = 40;  // legend

// Axial slice with the most tumour voxels (seg > 0); the middle slice when there is no tumour.
int largest_tumour_slice(const io::Volume& seg) {
  int best = seg.size[2] / 2;
  int64_t best_area = 0;
  const size_t plane = size_t(seg.size[0]) * seg.size[1];
  for (int z = 0; z < seg.size[2]; ++z) {
    const float* v = seg.voxels.data() + plane * z;
    const int64_t area = std::count_if(v, v + plane, [](float x) { return x > 0; });
    if (area > best_area) best_area = area, best = z;
  }
  return best;
}

// Axial slice as an image: row = y (anterior at the top), column = x (patient's left on the
// right: the radiological convention).
cv::Mat axial(const io::Volume& v, int z) {
  cv::Mat m(v.size[1], v.size[0], CV_32F);
  for (int y = 0; y < v.size[1]; ++y)
    for (int x = 0; x < v.size[0]; ++x) m.at<float>(y, x) = v.at(x, y, z);
  return m;
}

// Grey 8-bit slice, brain intensities clipped to their 0.5–99.5th percentiles.
cv::Mat to_grey(const cv::Mat& slice) {
  std::vector<float> brain;
  for (int i = 0; i < int(slice.total()); ++i)
    if (slice.at<float>(i) != 0) brain.push_back(slice.at<float>(i));
  float lo = 0, hi = 1;
  if (!brain.empty()) {
    std::sort(brain.begin(), brain.end());
    lo = brain[size_t(0.005 * (brain.size() - 1))];
    hi = brain[size_t(0.995 * (brain.size() - 1))];
  }
  cv::Mat grey;
  const double scale = hi > lo ? 255.0 / (hi - lo) : 1.0;
  slice.convertTo(grey, CV_8U, scale, -lo * scale);
  cv::Mat zero = slice == 0;
  grey.setTo(0, zero);
  cv::Mat bgr;
  cv::cvtColor(grey, bgr, cv::COLOR_GRAY2BGR);
  return bgr;
}

// FLAIR with the labels blended in: 1 red, 2 green, 4 yellow (BraTS's usual colours).
cv::Mat overlay(const cv::Mat& grey_bgr, const cv::Mat& seg) {
  cv::Mat out = grey_bgr.clone();
  for (int y = 0; y < seg.rows; ++y)
    for (int x = 0; x < seg.cols; ++x) {
      const int label = int(seg.at<float>(y, x));
      if (label == 0) continue;
      const cv::Vec3b colour = label == 1   ? cv::Vec3b(40, 40, 255)
                               : label == 2 ? cv::Vec3b(60, 220, 60)
                                            : cv::Vec3b(0, 230, 255);
      cv::Vec3b& p = out.at<cv::Vec3b>(y, x);
      for (int c = 0; c < 3; ++c) p[c] = uchar(0.45 * p[c] + 0.55 * colour[c]);
    }
  return out;
}

// Scales an image into a kTile square keeping its aspect (physical spacing is isotropic).
void place(const cv::Mat& img, cv::Mat& canvas, int row, int col, int interpolation) {
  const double s = double(kTile) / std::max(img.cols, img.rows);
  cv::Mat scaled;
  cv::resize(img, scaled, cv::Size(int(img.cols * s), int(img.rows * s)), 0, 0, interpolation);
  const int x0 = col * kTile + (kTile - scaled.cols) / 2,
            y0 = kHeader + row * kTile + (kTile - scaled.rows) / 2;
  scaled.copyTo(canvas(cv::Rect(x0, y0, scaled.cols, scaled.rows)));
}

void text(cv::Mat& canvas, const std::string& s, cv::Point at, double size, cv::Scalar colour) {
  cv::putText(canvas, s, at, cv::FONT_HERSHEY_SIMPLEX, size, cv::Scalar(0, 0, 0), 3, cv::LINE_AA);
  cv::putText(canvas, s, at, cv::FONT_HERSHEY_SIMPLEX, size, colour, 1, cv::LINE_AA);
}

}  // namespace

void write_preview(const std::vector<SyntheticPatient>& patients, const fs::path& png) {
  if (patients.empty()) throw_bad_input(png.string(), "no patients to preview");
  const int rows = int(patients.size());
  cv::Mat canvas(kHeader + rows * kTile + kFooter, 4 * kTile, CV_8UC3, cv::Scalar(0, 0, 0));
  const char* titles[] = {"T1", "T2", "FLAIR", "FLAIR + seg"};
  for (int c = 0; c < 4; ++c) text(canvas, titles[c], {c * kTile + 8, 19}, 0.55, {255, 255, 255});
  for (int r = 0; r < rows; ++r) {
    const SyntheticPatient& p = patients[size_t(r)];
    const int z = largest_tumour_slice(p.seg);
    const cv::Mat flair = to_grey(axial(p.flair, z));
    place(to_grey(axial(p.t1, z)), canvas, r, 0, cv::INTER_LINEAR);
    place(to_grey(axial(p.t2, z)), canvas, r, 1, cv::INTER_LINEAR);
    place(flair, canvas, r, 2, cv::INTER_LINEAR);
    place(overlay(flair, axial(p.seg, z)), canvas, r, 3, cv::INTER_NEAREST);
    const int y = kHeader + r * kTile;
    text(canvas, p.id, {6, y + 16}, 0.45, {255, 255, 255});
    text(canvas, std::string(io::grade_name(p.grade)) + "  z=" + std::to_string(z), {6, y + 34},
         0.45, p.grade == io::Grade::kHGG ? cv::Scalar(80, 80, 255) : cv::Scalar(255, 200, 80));
    cv::line(canvas, {0, y}, {4 * kTile, y}, {70, 70, 70});
  }
  const int fy = kHeader + rows * kTile;
  text(canvas, "seg: red 1 necrosis / non-enhancing core, green 2 oedema, yellow 4 enhancing",
       {6, fy + 16}, 0.42, {230, 230, 230});
  text(canvas, "axial, radiological view (patient's left on the right, anterior up)", {6, fy + 33},
       0.42, {230, 230, 230});
  std::vector<uchar> bytes;
  if (!cv::imencode(".png", canvas, bytes)) throw_runtime(png.string(), "PNG encoding failed");
  write_file_atomic(png,
                    std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

}  // namespace gg::synth
