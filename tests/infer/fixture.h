// Shared by the infer tests: a small synthetic cohort on disk and an untrained test bundle
// (ImageNet GoogLeNet + a fresh 2-class head per sequence), each built once per build of the test
// binary.
#pragma once

#include <torch/torch.h>

#include "model/model.h"
#include "synth/synth.h"
#include "testing/fixture_cache.h"
#include "testing/testing.h"
#include "train/train.h"

namespace gg::infer_testing {

namespace fs = std::filesystem;

inline fs::path bvlc_weights() {
  return testing::shared_dir() / "weights" / "bvlc_googlenet.caffemodel";
}
inline bool have_weights() { return fs::exists(bvlc_weights()); }

inline constexpr int kSlices = 6;  // the test bundle's window (smaller than 20: fast tests)

// <dir>/model.json + t1.pt, t2.pt, flair.pt: ImageNet weights, new heads with seeds 1, 2, 3.
inline void write_test_bundle(const fs::path& dir, int slices = kSlices) {
  static model::GoogLeNet net = [] {
    return model::load_pretrained(model::Variant::kBvlc, bvlc_weights());
  }();
  fs::create_directories(dir);
  uint64_t seed = 1;
  for (const char* seq : {"t1", "t2", "flair"}) {
    net->replace_classifier(2, seed++);
    model::save_weights(net, dir / (std::string(seq) + ".pt"));
  }
  train::BundleInfo info;
  info.slices = slices;
  info.sequences = {"t1", "t2", "flair"};
  train::write_bundle_info(info, dir);
}

// Built once per build of the test binary (testing/fixture_cache.h) and shared read-only by every
// test process (tests that edit the bundle copy it first).
struct SharedData {
  fs::path dir;                 // the cache entry: cohort/, bundle/
  std::vector<io::Case> cases;  // 2 LGG + 2 HGG, 64x64x40, canonical orientation
  fs::path bundle;
};

inline SharedData& shared() {
  static SharedData* s = [] {
    auto* d = new SharedData;
    d->dir = testing::cached_fixture("infer_shared",
                                     "lgg 2 hgg 2 seed 11 size 64x64x40\nweights " +
                                         testing::optional_file_fingerprint(bvlc_weights()),
                                     [](const fs::path& dir) {
                                       synth::SynthOptions so;
                                       so.lgg = 2, so.hgg = 2, so.seed = 11, so.difficulty = 0.0;
                                       so.size = {64, 64, 40};
                                       so.spacing_mm = synth::default_spacing_mm(so.size);
                                       so.reoriented_fraction = 0;
                                       so.threads = 2;
                                       so.show_progress = false;
                                       synth::generate_cohort(dir / "cohort", so);
                                       if (have_weights()) write_test_bundle(dir / "bundle");
                                     });
    d->cases = io::discover_cohort(d->dir / "cohort");
    d->bundle = d->dir / "bundle";
    return d;
  }();
  return *s;
}

}  // namespace gg::infer_testing
