// Localisation on the real scans in ../shared/data (the BraTS 2019 sample and five BraTS 2018
// cases), as read and as z-scored copies written the ways segmentation pipelines write them:
// the window must not move, the confidence must mean something, and the table these tests print
// is the one bench/README.md shows (issue 19, parts 4 and 5).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <map>

#include "infer/infer.h"
#include "io/background.h"
#include "prep/prep.h"
#include "registration/registration.h"
#include "testing/testing.h"

namespace gg::infer {
namespace {

namespace fs = std::filesystem;

struct RealCase {
  std::string id;
  fs::path flair, seg;
};

// Every case with a FLAIR and a whole-tumour mask under ../shared/data. Fails naming the folder
// when it is absent (the fixtures are part of CI).
std::vector<RealCase> real_cases() {
  const fs::path data = testing::shared_dir() / "data";
  std::vector<RealCase> cases;
  for (const fs::path& root : {data / "brats-sample" / "HGG", data / "brats2018-flair-t1"}) {
    if (!fs::is_directory(root)) {
      ADD_FAILURE() << "missing fixture folder " << root;
      continue;
    }
    for (const auto& e : fs::directory_iterator(root)) {
      if (!e.is_directory()) continue;
      const std::string id = e.path().filename().string();
      cases.push_back({id, e.path() / (id + "_flair.nii.gz"), e.path() / (id + "_seg.nii.gz")});
    }
  }
  std::sort(cases.begin(), cases.end(), [](auto& a, auto& b) { return a.id < b.id; });
  return cases;
}

// How a pipeline may have written the scan after z-scoring inside the brain (voxels != 0).
enum class Copy { kRaw, kZscoreCaptk, kZscoreZeroOutside, kZscoreMinOutside };
const char* copy_name(Copy c) {
  switch (c) {
    case Copy::kRaw:
      return "raw";
    case Copy::kZscoreCaptk:
      return "z-scored, background -mean/sd (CaPTk, DeepMedic)";
    case Copy::kZscoreZeroOutside:
      return "z-scored, background 0 (nnU-Net)";
    case Copy::kZscoreMinOutside:
      return "z-scored, background = brain minimum";
  }
  return "?";
}

io::Volume copy_of(const io::Volume& v, Copy c) {
  if (c == Copy::kRaw) return v;
  double sum = 0, sum2 = 0;
  int64_t n = 0;
  for (float x : v.voxels)
    if (x != 0.0f) sum += x, sum2 += double(x) * x, ++n;
  const double mean = sum / double(n), sd = std::sqrt(sum2 / double(n) - mean * mean);
  io::Volume out = v;
  float brain_min = std::numeric_limits<float>::infinity();
  for (float& x : out.voxels)
    if (x != 0.0f) x = float((x - mean) / sd), brain_min = std::min(brain_min, x);
  const float outside = c == Copy::kZscoreCaptk         ? float(-mean / sd)
                        : c == Copy::kZscoreZeroOutside ? 0.0f
                                                        : brain_min;
  for (size_t i = 0; i < out.voxels.size(); ++i)
    if (v.voxels[i] == 0.0f) out.voxels[i] = outside;
  return out;
}

struct Row {
  std::string id;
  Copy copy = Copy::kRaw;
  int mask_z = 0, heuristic_z = 0;
  double confidence = 0;
  bool flagged = false;
  double seed_ml = 0, lesion_ml = 0;
  int offset() const { return heuristic_z - mask_z; }
};

struct Measured {
  std::vector<Row> rows;
  // Per case and copy: the foreground (registration_poor's head mask) and the 20-slice window.
  std::map<std::pair<std::string, Copy>, std::vector<uint8_t>> foreground, window;
  std::map<std::pair<std::string, Copy>, SkullStripCheck> skull;
};

const Measured& measured() {
  static const Measured* m = [] {
    auto* out = new Measured;
    for (const RealCase& rc : real_cases()) {
      const io::Volume flair = io::read_volume(rc.flair);
      const int mask_z = prep::largest_tumour_slice(io::read_volume(rc.seg));
      for (Copy c :
           {Copy::kRaw, Copy::kZscoreCaptk, Copy::kZscoreZeroOutside, Copy::kZscoreMinOutside}) {
        const io::Volume v = copy_of(flair, c);
        const TumourLocation loc = locate_tumour(v, rc.flair);
        Row r{rc.id,
              c,
              mask_z,
              loc.centre_z,
              loc.confidence,
              loc.confidence < kLowLocalisationConfidence,
              loc.component_ml,
              loc.lesion_ml};
        out->rows.push_back(r);
        out->foreground[{rc.id, c}] = registration::foreground_mask(v);
        out->skull[{rc.id, c}] = check_skull_stripped(v);
        const int start = prep::window_start(loc.centre_z, 20, v.size[2]);
        out->window[{rc.id, c}] = prep::slice_window_u8(v, start, 20, 224, 0.5, 99.5);
      }
    }
    // The table bench/README.md shows.
    std::string table =
        "| case | input | mask z* | heuristic z | offset | confidence | flagged | seed mL | "
        "lesion mL |\n|---|---|---|---|---|---|---|---|---|\n";
    for (const Row& r : out->rows)
      table += fmt::format("| {} | {} | {} | {} | {:+d} | {:.2f} | {} | {:.1f} | {:.1f} |\n", r.id,
                           copy_name(r.copy), r.mask_z, r.heuristic_z, r.offset(), r.confidence,
                           r.flagged ? "yes" : "no", r.seed_ml, r.lesion_ml);
    std::printf("%s", table.c_str());
    return out;
  }();
  return *m;
}

TEST(RealScanLocalisation, ZscoredCopiesGiveTheSameWindowAndConfidence) {
  const Measured& m = measured();
  ASSERT_EQ(m.rows.size(), 6u * 4u) << "expected the 6 real cases of ../shared/data";
  std::map<std::string, Row> raw;
  for (const Row& r : m.rows)
    if (r.copy == Copy::kRaw) raw[r.id] = r;
  for (const Row& r : m.rows) {
    SCOPED_TRACE(r.id + ", " + copy_name(r.copy));
    EXPECT_EQ(r.heuristic_z, raw[r.id].heuristic_z);
    EXPECT_NEAR(r.confidence, raw[r.id].confidence, 0.02);
  }
}

TEST(RealScanLocalisation, ZscoredCopiesGiveTheSameModelInputBytes) {
  const Measured& m = measured();
  for (const auto& [key, window] : m.window) {
    const auto& raw = m.window.at({key.first, Copy::kRaw});
    ASSERT_EQ(window.size(), raw.size());
    int64_t differ = 0, worst = 0;
    for (size_t i = 0; i < raw.size(); ++i) {
      const int d = std::abs(int(window[i]) - int(raw[i]));
      differ += d != 0, worst = std::max<int64_t>(worst, d);
    }
    SCOPED_TRACE(key.first + ", " + copy_name(key.second));
    std::printf("%s, %s: %lld of %zu bytes differ, by at most %lld\n", key.first.c_str(),
                copy_name(key.second), (long long)differ, raw.size(), (long long)worst);
    EXPECT_LE(worst, 1);  // float rounding at a quantisation boundary, nothing more
    // A background equal to the brain's minimum takes the brain voxels of that value with it
    // (BraTS19_2013_10_1 has many): the percentiles move a little, 5% of the bytes by 1.
    EXPECT_LT(double(differ),
              (key.second == Copy::kZscoreMinOutside ? 0.1 : 0.001) * double(raw.size()));
  }
}

TEST(RealScanLocalisation, ZscoredCopiesKeepTheHeadMaskAndSkullCheck) {
  const Measured& m = measured();
  for (const auto& [key, fg] : m.foreground) {
    SCOPED_TRACE(key.first + ", " + copy_name(key.second));
    // Background 0 inside the brain's range: the head mask is the non-background, dark brain
    // voxels included (0.983 for BraTS19_2013_10_1); else the same voxels.
    EXPECT_GE(registration::dice(fg, m.foreground.at({key.first, Copy::kRaw})),
              key.second == Copy::kZscoreZeroOutside ? 0.97 : 0.99);
    const SkullStripCheck &s = m.skull.at(key), &raw = m.skull.at({key.first, Copy::kRaw});
    EXPECT_TRUE(s.stripped);
    EXPECT_NEAR(s.outline_ml, raw.outline_ml, 0.05 * raw.outline_ml);
  }
}

TEST(RealScanLocalisation, NoMissGoesUnflagged) {
  for (const Row& r : measured().rows) {
    SCOPED_TRACE(r.id + ", " + copy_name(r.copy));
    if (std::abs(r.offset()) > 5) {
      EXPECT_TRUE(r.flagged) << "offset " << r.offset();
    }
  }
}

// The safety net: growing too far (0.5 sigma) runs into normal tissue on every case (lesions of
// 280-410 mL, centres up to 57 slices off); each is then flagged.
TEST(RealScanLocalisation, LeakingGrowthIsFlagged) {
  for (const RealCase& rc : real_cases()) {
    const TumourLocation loc = locate_tumour(io::read_volume(rc.flair), rc.flair, 0.5);
    SCOPED_TRACE(rc.id);
    EXPECT_TRUE(loc.lesion_leaked) << loc.lesion_ml << " mL";
    EXPECT_LT(loc.confidence, kLowLocalisationConfidence);
  }
}

}  // namespace
}  // namespace gg::infer
