// segment_brats: CaPTk's preprocessing, then DeepMedic 0.7.4's inference over the whole volume
// (deepmedic/routines/testing.py inferenceWholeVolumes, dataManagement/sampling.py and
// preprocessing.py):
//  - each channel is mirror-padded ('reflect') by half the receptive field (8 voxels), so every
//    voxel is classified;
//  - the volume is tiled by input segments of segmentsDimInference (45^3), moving by the voxels
//    each classifies (29); along each axis the last segment ends at the edge (overlapping the
//    previous, whose predictions it overwrites);
//  - each subsampled pathway gets every f-th voxel around the segment, filled with the mean of
//    the padded volume's 8 corners outside it;
//  - the arg-max class of the probabilities is the label; CaPTk maps class 3 to BraTS label 4.
#include <chrono>

#include "common/error.h"
#include "common/progress.h"
#include "io/background.h"
#include "segment/deepmedic.h"
#include "segment/internal.h"
#include "segment/segment.h"

namespace gg::segment {

namespace detail {

std::vector<int> segment_starts(int size, int segment, int stride) {
  std::vector<int> starts;
  for (int next = 0;; next += stride) {
    const int far = std::min(next + segment, size);
    starts.push_back(far - segment);
    if (far >= size) return starts;
  }
}

std::vector<int> subsampled_indices(int start, int out, int rf, int f, int part, int size) {
  const int slots_before = f % 2 ? (f - 1) / 2 * rf : (f - 2) / 2 * rf + rf / 2;
  const int to_centre = f % 2 ? f / 2 : f / 2 - 1;
  const int low = start + to_centre - slots_before;
  const int high = low + f * rf + ((out + f - 1) / f - 1) * f;
  const int low_c = std::max(low, 0), high_c = std::min(high, size);
  const int put = low >= 0 ? 0 : -low / f;
  const int count = high_c > low_c ? (high_c - low_c + f - 1) / f : 0;
  std::vector<int> idx(size_t(part), -1);
  for (int k = 0; k < count && put + k < part; ++k) idx[size_t(put + k)] = low_c + k * f;
  return idx;
}

}  // namespace detail

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

// numpy.pad(mode='reflect') of a [z][y][x] volume.
struct Padded {
  int nx = 0, ny = 0, nz = 0;
  std::vector<float> v;
  float at(int x, int y, int z) const {
    return v[size_t(x) + size_t(nx) * (size_t(y) + size_t(ny) * size_t(z))];
  }
};
int reflect(int i, int n) {
  while (i < 0 || i >= n) i = i < 0 ? -i : 2 * (n - 1) - i;
  return i;
}
Padded pad_reflect(const std::vector<float>& v, const std::array<int, 3>& size,
                   const std::array<int, 3>& before, const std::array<int, 3>& after) {
  Padded p;
  p.nx = size[0] + before[0] + after[0], p.ny = size[1] + before[1] + after[1];
  p.nz = size[2] + before[2] + after[2];
  p.v.resize(size_t(p.nx) * p.ny * p.nz);
  size_t o = 0;
  for (int z = 0; z < p.nz; ++z)
    for (int y = 0; y < p.ny; ++y)
      for (int x = 0; x < p.nx; ++x) {
        const int sx = reflect(x - before[0], size[0]), sy = reflect(y - before[1], size[1]);
        const int sz = reflect(z - before[2], size[2]);
        p.v[o++] = v[size_t(sx) + size_t(size[0]) * (size_t(sy) + size_t(size[1]) * size_t(sz))];
      }
  return p;
}

// preprocessing.py calculateTheZeroIntensityOf3dImage.
float corner_mean(const Padded& p) {
  double s = 0;
  for (int z : {0, p.nz - 1})
    for (int y : {0, p.ny - 1})
      for (int x : {0, p.nx - 1}) s += p.at(x, y, z);
  return float(s / 8);
}

}  // namespace

Segmentation segment_brats(const fs::path& model_dir, const io::Volume& t1, const io::Volume& t1ce,
                           const io::Volume& t2, const io::Volume& flair,
                           const SegmentOptions& options) {
  const auto t_start = Clock::now();
  const std::array<const io::Volume*, 4> channels{&t1, &t1ce, &t2, &flair};
  const std::array<const char*, 4> names{"t1", "t1ce", "t2", "flair"};
  for (size_t c = 1; c < 4; ++c)
    if (!io::same_grid(*channels[0], *channels[c]))
      throw_bad_input(names[c],
                      "is on another grid than t1 (" +
                          io::describe_grid_difference(*channels[0], *channels[c]) + ")",
                      "co-register the sequences (BraTS space) first");
  for (int d = 0; d < 3; ++d)
    if (std::abs(t1.spacing_mm[d] - 1.0) > 0.05)
      throw_bad_input("t1", "has spacing other than 1 mm; the model was trained at 1 mm",
                      "resample to 1 mm isotropic (BraTS space) first");

  // CaPTk's model is for research use only under SBIA's licence, which must travel with it.
  if (!fs::exists(model_dir / "SBIA_license.txt"))
    throw_bad_input(model_dir.string(), "SBIA_license.txt is missing beside the DeepMedic model",
                    "copy the model folder whole: its licence travels with it");
  const DeepMedicConfig config = read_deepmedic_config(model_dir / "modelConfig.txt");
  if (config.num_channels != 4)
    throw_bad_input((model_dir / "modelConfig.txt").string(),
                    "the model takes " + std::to_string(config.num_channels) +
                        " channels; segment_brats passes 4 (T1, T1ce, T2, FLAIR)");
  const DeepMedic net(config, read_tf_checkpoint(model_dir / "model.ckpt"));
  if (options.threads > 0) set_torch_threads(options.threads);

  const int rf = config.receptive_field()[0];
  const int in =
      options.output_tile > 0 ? net.normal_input(options.output_tile) : config.segment_inference[0];
  const int out = in - rf + 1;
  // preprocessing.py padCnnInputs: (rf-1)/2 before, the rest after, more after if the segment
  // is larger than the padded image.
  std::array<int, 3> before{}, after{}, padded{};
  for (int d = 0; d < 3; ++d) {
    before[d] = (rf - 1) / 2;
    after[d] = rf - 1 - before[d] + std::max(0, in - (t1.size[d] + rf - 1));
    padded[d] = t1.size[d] + before[d] + after[d];
  }
  std::vector<Padded> images;
  std::vector<float> fill;
  // A voxel is background for tile skipping when it is in every channel's background (0 in BraTS).
  std::vector<float> all_background(t1.voxels.size(), 1.0f);
  for (size_t c = 0; c < 4; ++c) {
    const io::Background background = io::find_background(*channels[c]);
    for (size_t i = 0; i < all_background.size(); ++i)
      if (!background.mask[i]) all_background[i] = 0.0f;
    images.push_back(
        pad_reflect(detail::zscore_like_captk(channels[c]->voxels, names[c], &background.mask),
                    t1.size, before, after));
    fill.push_back(corner_mean(images.back()));
  }
  Padded background = pad_reflect(all_background, t1.size, before, after);

  Segmentation result;
  result.size = t1.size;
  result.seconds_preprocess = seconds_since(t_start);
  const auto t_net = Clock::now();
  const int classes = config.num_classes;
  const size_t padded_voxels = size_t(padded[0]) * padded[1] * padded[2];
  std::vector<float> probs(size_t(classes) * padded_voxels, 0.f);
  for (size_t i = 0; i < padded_voxels; ++i) probs[i] = 1.f;  // class 0 where nothing is written
  const auto xs = detail::segment_starts(padded[0], in, out);
  const auto ys = detail::segment_starts(padded[1], in, out);
  const auto zs = detail::segment_starts(padded[2], in, out);
  const size_t nsub = config.subsampled.size();
  const size_t in3 = size_t(in) * in * in, out3 = size_t(out) * out * out;
  std::vector<float> normal(4 * in3);
  std::vector<std::vector<float>> subs(nsub);
  Progress progress("segment", int64_t(xs.size() * ys.size() * zs.size()), "tiles",
                    options.show_progress);
  for (int z0 : zs)
    for (int y0 : ys)
      for (int x0 : xs) {
        progress.tick();
        ++result.tiles;
        if (options.skip_background_tiles) {
          bool any = false;
          for (int z = z0; z < z0 + in && !any; ++z)
            for (int y = y0; y < y0 + in && !any; ++y)
              for (int x = x0; x < x0 + in && !any; ++x) any = background.at(x, y, z) == 0;
          if (!any) {
            ++result.tiles_skipped;
            continue;
          }
        }
        size_t o = 0;
        for (size_t c = 0; c < 4; ++c)
          for (int z = z0; z < z0 + in; ++z)
            for (int y = y0; y < y0 + in; ++y)
              for (int x = x0; x < x0 + in; ++x) normal[o++] = images[c].at(x, y, z);
        for (size_t p = 0; p < nsub; ++p) {
          const int f = config.subsample_factors[p][0], m = net.subsampled_input(p, out);
          const auto ix = detail::subsampled_indices(x0, out, rf, f, m, padded[0]);
          const auto iy = detail::subsampled_indices(y0, out, rf, f, m, padded[1]);
          const auto iz = detail::subsampled_indices(z0, out, rf, f, m, padded[2]);
          subs[p].resize(4 * size_t(m) * m * m);
          size_t q = 0;
          for (size_t c = 0; c < 4; ++c)
            for (int k = 0; k < m; ++k)
              for (int j = 0; j < m; ++j)
                for (int i = 0; i < m; ++i) {
                  const bool inside = iz[k] >= 0 && iy[j] >= 0 && ix[i] >= 0;
                  subs[p][q++] = inside ? images[c].at(ix[i], iy[j], iz[k]) : fill[c];
                }
        }
        const std::vector<float> tile = net.forward(normal, subs, 1, out);
        // testing.py: the classified cube starts half a receptive field into the segment.
        const int h = (rf - 1) / 2;
        for (int c = 0; c < classes; ++c)
          for (int k = 0; k < out; ++k)
            for (int j = 0; j < out; ++j) {
              const float* src = &tile[size_t(c) * out3 + (size_t(k) * out + j) * out];
              float* dst = &probs[size_t(c) * padded_voxels + size_t(x0 + h) +
                                  size_t(padded[0]) * (size_t(y0 + h + j) +
                                                       size_t(padded[1]) * size_t(z0 + h + k))];
              std::copy(src, src + out, dst);
            }
      }
  result.seconds_network = seconds_since(t_net);

  // Unpad, arg-max (first maximum wins, as numpy's), and CaPTk's class 3 -> BraTS label 4.
  const auto& s = t1.size;
  result.labels.resize(size_t(s[0]) * s[1] * s[2]);
  if (options.keep_probabilities)
    result.probabilities.resize(size_t(classes) * result.labels.size());
  size_t o = 0;
  for (int z = 0; z < s[2]; ++z)
    for (int y = 0; y < s[1]; ++y)
      for (int x = 0; x < s[0]; ++x, ++o) {
        const size_t at =
            size_t(x + before[0]) +
            size_t(padded[0]) * (size_t(y + before[1]) + size_t(padded[1]) * size_t(z + before[2]));
        int best = 0;
        for (int c = 1; c < classes; ++c)
          if (probs[size_t(c) * padded_voxels + at] > probs[size_t(best) * padded_voxels + at])
            best = c;
        result.labels[o] = static_cast<uint8_t>(best == 3 ? 4 : best);
        if (options.keep_probabilities)
          for (int c = 0; c < classes; ++c)
            result.probabilities[size_t(c) * result.labels.size() + o] =
                probs[size_t(c) * padded_voxels + at];
      }
  return result;
}

}  // namespace gg::segment
