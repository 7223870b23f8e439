// The phantom in memory: determinism, image conventions, tissue contrasts per sequence, and the
// tumour phenotypes by grade and difficulty.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <vector>

#include "common/error.h"
#include "synth/phantom.h"
#include "synth/synth.h"

namespace gg::synth {
namespace {

SynthOptions small_options() {
  SynthOptions o;
  o.size = {64, 64, 40};
  o.spacing_mm = default_spacing_mm(o.size);
  return o;
}

struct TumourStats {
  int64_t whole = 0, necrotic_core = 0, oedema = 0, enhancing = 0;
};

TumourStats tumour_stats(const io::Volume& seg) {
  TumourStats s;
  for (float v : seg.voxels) {
    s.whole += v > 0;
    s.necrotic_core += v == 1;
    s.oedema += v == 2;
    s.enhancing += v == 4;
  }
  return s;
}

// --skull: the brain and its mask are untouched; around it a dark bone shell, then a bright scalp
// shell, in every sequence.
TEST(Phantom, SkullAddsDarkBoneAndBrightScalpAroundAnUnchangedBrain) {
  SynthOptions o = small_options();
  const SyntheticPatient plain = make_patient(0, io::Grade::kHGG, o);
  o.skull = true;
  const SyntheticPatient head = make_patient(0, io::Grade::kHGG, o);
  EXPECT_EQ(head.seg.voxels, plain.seg.voxels);
  for (const auto& [a, b] : {std::pair{&plain.t1, &head.t1}, std::pair{&plain.t2, &head.t2},
                             std::pair{&plain.flair, &head.flair}}) {
    std::vector<float> brain;
    int64_t changed_in_brain = 0, dark = 0, bright = 0, added = 0;
    for (size_t i = 0; i < a->voxels.size(); ++i)
      if (a->voxels[i] > 0)
        brain.push_back(a->voxels[i]), changed_in_brain += a->voxels[i] != b->voxels[i];
    std::nth_element(brain.begin(), brain.begin() + long(brain.size() / 2), brain.end());
    const float median = brain[brain.size() / 2];
    for (size_t i = 0; i < a->voxels.size(); ++i) {
      if (a->voxels[i] > 0 || b->voxels[i] == 0) continue;
      ++added;
      dark += b->voxels[i] < 0.15f * median;
      bright += b->voxels[i] > 1.2f * median;  // scalp 1.5-1.9 x median, 5% noise
    }
    EXPECT_EQ(changed_in_brain, 0);
    EXPECT_EQ(dark + bright, added);  // every new voxel is bone or scalp
    // 7 mm of bone inside 6 mm of scalp, as voxels of 3.875 mm: 2 layers each.
    EXPECT_GT(dark, int64_t(brain.size() / 10));
    EXPECT_GT(bright, int64_t(brain.size() / 10));
  }
}

TEST(Phantom, SameSeedSameVoxelsOtherSeedOrIndexDiffers) {
  const SynthOptions o = small_options();
  const SyntheticPatient a = make_patient(3, io::Grade::kHGG, o);
  const SyntheticPatient b = make_patient(3, io::Grade::kHGG, o);
  EXPECT_EQ(a.id, "Synth_HGG_004");
  EXPECT_EQ(a.t1.voxels, b.t1.voxels);
  EXPECT_EQ(a.t2.voxels, b.t2.voxels);
  EXPECT_EQ(a.flair.voxels, b.flair.voxels);
  EXPECT_EQ(a.seg.voxels, b.seg.voxels);

  SynthOptions other = o;
  other.seed = 2;
  EXPECT_NE(make_patient(3, io::Grade::kHGG, other).t1.voxels, a.t1.voxels);
  EXPECT_NE(make_patient(4, io::Grade::kHGG, o).t1.voxels, a.t1.voxels);
  EXPECT_NE(make_patient(3, io::Grade::kLGG, o).t1.voxels, a.t1.voxels);
}

TEST(Phantom, GeometryLabelsAndBackgroundAsBraTS) {
  const SynthOptions o = small_options();
  for (io::Grade g : {io::Grade::kLGG, io::Grade::kHGG}) {
    const SyntheticPatient p = make_patient(0, g, o);
    for (const io::Volume* v : {&p.t1, &p.t2, &p.flair, &p.seg}) {
      EXPECT_EQ(v->size, (std::array<int, 3>{64, 64, 40}));
      EXPECT_DOUBLE_EQ(v->spacing_mm[0], 3.875);
      EXPECT_EQ(v->direction, (std::array<double, 9>{1, 0, 0, 0, 1, 0, 0, 0, 1}));
      EXPECT_DOUBLE_EQ(v->origin_mm[2], -0.5 * 39 * 3.875);
    }
    int64_t brain = 0, tumour = 0;
    for (size_t i = 0; i < p.t1.voxels.size(); ++i) {
      const float seg = p.seg.voxels[i];
      ASSERT_TRUE(seg == 0 || seg == 1 || seg == 2 || seg == 4) << seg;
      // One brain mask for all sequences: inside > 0 and whole numbers, outside exactly 0.
      const bool inside = p.t1.voxels[i] != 0;
      ASSERT_EQ(p.t2.voxels[i] != 0, inside);
      ASSERT_EQ(p.flair.voxels[i] != 0, inside);
      ASSERT_TRUE(seg == 0 || inside) << "tumour outside the brain at " << i;
      for (const io::Volume* v : {&p.t1, &p.t2, &p.flair}) {
        ASSERT_GE(v->voxels[i], 0);
        ASSERT_EQ(v->voxels[i], std::round(v->voxels[i]));
        ASSERT_LE(v->voxels[i], 32767);
      }
      brain += inside;
      tumour += seg > 0;
    }
    // A brain of ~1.1-1.6 litres in 3.875 mm voxels (58.2 mm^3): 18k-30k voxels.
    EXPECT_GT(brain, 15000);
    EXPECT_LT(brain, 32000);
    EXPECT_GT(tumour, 0);
    // The head does not touch the grid's faces (skull-stripped brain fully in view).
    for (int z : {0, 39})
      for (int y = 0; y < 64; ++y)
        for (int x = 0; x < 64; ++x) ASSERT_EQ(p.t1.at(x, y, z), 0);
  }
}

// Mean intensity of each tissue class, from the tissue map the renderer used.
std::map<int, double> tissue_means(const detail::TissueMap& map, const io::Volume& v) {
  std::map<int, double> sum, count;
  for (size_t i = 0; i < map.tissue.size(); ++i) {
    if (map.tissue[i] == detail::kBackground) continue;
    sum[map.tissue[i]] += v.voxels[i];
    count[map.tissue[i]] += 1;
  }
  std::map<int, double> mean;
  for (const auto& [t, s] : sum) mean[t] = s / count[t];
  return mean;
}

TEST(Phantom, TissueContrastsFollowEachSequence) {
  SynthOptions o;  // 1.5 mm: fine enough to resolve the cortex and sulci
  o.size = {160, 160, 104};
  o.spacing_mm = 1.5;
  for (int index : {1})
    for (io::Grade g : {io::Grade::kLGG, io::Grade::kHGG}) {
      const detail::PatientParams params = detail::draw_params(o.seed, g, index, o.difficulty);
      const detail::TissueMap map = detail::rasterise(params, o.size, o.spacing_mm);
      const SyntheticPatient p = make_patient(index, g, o);
      auto t1 = tissue_means(map, p.t1), t2 = tissue_means(map, p.t2),
           flair = tissue_means(map, p.flair);
      using namespace detail;
      SCOPED_TRACE(p.id);
      ASSERT_TRUE(t1.count(kCsf) && t1.count(kGrey) && t1.count(kWhite) && t1.count(kOedema));
      EXPECT_GT(t1[kWhite], t1[kGrey]);
      EXPECT_GT(t1[kGrey], t1[kCsf]);
      EXPECT_GT(t2[kCsf], t2[kGrey]);
      EXPECT_GT(t2[kGrey], t2[kWhite]);
      EXPECT_LT(flair[kCsf], flair[kGrey]);
      EXPECT_LT(flair[kCsf], flair[kWhite]);
      EXPECT_GT(flair[kOedema], flair[kWhite]);
      EXPECT_GT(t2[kOedema], t2[kWhite]);
      const int core = params.tumour.necrotic ? kNecrosis : kSolidCore;
      // The tumour core: dark on T1, bright on T2 (necrotic fluid or a T2-bright LGG core).
      ASSERT_TRUE(t1.count(core)) << "no core voxels";
      EXPECT_LT(t1[core], t1[kWhite]);
      EXPECT_GT(t2[core], t2[kWhite]);
      if (core == kSolidCore) {
        EXPECT_GT(flair[kSolidCore], flair[kWhite]);
      }
    }
}

TEST(Phantom, HighGradeLargerNecroticWithMoreOedema) {
  const SynthOptions o = small_options();  // default difficulty 0.5
  constexpr int kPerGrade = 12;
  std::map<io::Grade, double> volume, oedema_fraction, necrotic, enhancing;
  for (io::Grade g : {io::Grade::kLGG, io::Grade::kHGG})
    for (int i = 0; i < kPerGrade; ++i) {
      const SyntheticPatient p = make_patient(i, g, o);
      const TumourStats s = tumour_stats(p.seg);
      volume[g] += double(s.whole) / kPerGrade;
      oedema_fraction[g] += double(s.oedema) / double(s.whole) / kPerGrade;
      necrotic[g] += p.phenotype.necrotic ? 1.0 / kPerGrade : 0;
      enhancing[g] += s.enhancing > 0.05 * s.whole ? 1.0 / kPerGrade : 0;
    }
  const auto L = io::Grade::kLGG, H = io::Grade::kHGG;
  EXPECT_GT(volume[H], 2 * volume[L]);
  EXPECT_GT(oedema_fraction[H], oedema_fraction[L] + 0.1);
  EXPECT_GE(necrotic[H], 0.7);
  EXPECT_LE(necrotic[L], 0.3);
  EXPECT_GE(enhancing[H], 0.7);
  EXPECT_LE(enhancing[L], 0.3);
}

// AUC of the latent aggressiveness for HGG vs LGG: what a perfect reader of the phenotype gets.
double phenotype_auc(double difficulty, int per_grade) {
  std::vector<double> lgg, hgg;
  for (int i = 0; i < per_grade; ++i) {
    lgg.push_back(detail::draw_params(7, io::Grade::kLGG, i, difficulty).phenotype.aggressiveness);
    hgg.push_back(detail::draw_params(7, io::Grade::kHGG, i, difficulty).phenotype.aggressiveness);
  }
  double wins = 0;
  for (double h : hgg)
    for (double l : lgg) wins += h > l ? 1 : (h == l ? 0.5 : 0);
  return wins / (double(lgg.size()) * double(hgg.size()));
}

TEST(Phantom, DifficultyControlsOverlapOfGrades) {
  EXPECT_DOUBLE_EQ(phenotype_auc(0.0, 300), 1.0);
  const double auc_default = phenotype_auc(0.5, 300), auc_hard = phenotype_auc(1.0, 300);
  EXPECT_GT(auc_default, 0.8);
  EXPECT_LT(auc_default, 0.97);
  EXPECT_LT(auc_hard, auc_default - 0.05);
  int atypical = 0;
  for (int i = 0; i < 400; ++i)
    atypical += detail::draw_params(7, io::Grade::kHGG, i, 0.5).phenotype.atypical;
  EXPECT_GT(atypical, 20);  // 10% expected
  EXPECT_LT(atypical, 60);
  for (int i = 0; i < 100; ++i)
    ASSERT_FALSE(detail::draw_params(7, io::Grade::kLGG, i, 0).phenotype.atypical);
}

TEST(Phantom, AtDifficultyZeroEveryHighGradeTumourIsLarger) {
  SynthOptions o = small_options();
  o.difficulty = 0;
  int64_t largest_lgg = 0, smallest_hgg = INT64_MAX;
  for (int i = 0; i < 6; ++i) {
    largest_lgg =
        std::max(largest_lgg, tumour_stats(make_patient(i, io::Grade::kLGG, o).seg).whole);
    smallest_hgg =
        std::min(smallest_hgg, tumour_stats(make_patient(i, io::Grade::kHGG, o).seg).whole);
  }
  EXPECT_GT(smallest_hgg, largest_lgg);
}

TEST(Phantom, ASlightlySmallFieldOfViewShrinksTheHeadInsteadOfCuttingIt) {
  for (const auto& [size, spacing] : {std::pair<std::array<int, 3>, double>{{80, 80, 40}, 3.0},
                                      std::pair<std::array<int, 3>, double>{{96, 96, 48}, 2.5}}) {
    SynthOptions o;
    o.size = size;
    o.spacing_mm = spacing;  // 240/size[0]: too little for a life-size head in z
    const SyntheticPatient p = make_patient(0, io::Grade::kHGG, o);
    EXPECT_DOUBLE_EQ(p.t1.spacing_mm[2], spacing);
    for (int z : {0, size[2] - 1})
      for (int y = 0; y < size[1]; ++y)
        for (int x = 0; x < size[0]; ++x)
          ASSERT_EQ(p.flair.at(x, y, z), 0) << "brain cut at z=" << z;
    EXPECT_GT(tumour_stats(p.seg).whole, 0);
  }
}

TEST(Phantom, RejectsBadOptions) {
  SynthOptions o;
  o.size = {64, 64, 40};  // 1 mm voxels: a 64 mm field of view cannot hold a head
  try {
    make_patient(0, io::Grade::kLGG, o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_NE(e.problem().find("too small to hold a head"), std::string::npos) << e.problem();
    EXPECT_NE(e.fix().find("3.875"), std::string::npos) << e.fix();
  }
  o = small_options();
  o.difficulty = 1.5;
  EXPECT_THROW(validate(o), Error);
  o = small_options();
  o.lgg = o.hgg = 0;
  EXPECT_THROW(validate(o), Error);
  EXPECT_THROW(make_patient(0, io::Grade::kUnknown, small_options()), Error);
  EXPECT_NO_THROW(validate(small_options()));
  o = small_options();
  o.size = {16, 16, 16};  // the default spacing holds a head even on a tiny grid
  o.spacing_mm = default_spacing_mm(o.size);
  EXPECT_NO_THROW(validate(o));
  o.lgg = o.hgg = 0;  // counts matter to a cohort, not to one patient
  EXPECT_NO_THROW(make_patient(0, io::Grade::kHGG, o));
  EXPECT_NO_THROW(validate(SynthOptions{}));  // the BraTS grid at 1 mm
}

}  // namespace
}  // namespace gg::synth
