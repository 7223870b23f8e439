// The training data's profile (prep.h): grids and intensity histograms of a set of patients.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <set>

#include "common/error.h"
#include "prep/prep.h"

namespace gg::prep {

namespace {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

std::vector<double> intensity_histogram(const uint8_t* pixels, size_t n) {
  std::vector<double> h(kIntensityBins, 0.0);
  double total = 0;
  for (size_t i = 0; i < n; ++i)
    if (pixels[i] > 0) h[size_t((pixels[i] - 1) * kIntensityBins / 255)] += 1, total += 1;
  if (total > 0)
    for (double& x : h) x /= total;
  return h;
}

double histogram_distance(const std::vector<double>& a, const std::vector<double>& b) {
  // 1-D EMD: the area between the two cumulative distributions, bins 1/(bins-1) apart.
  double cdf_a = 0, cdf_b = 0, area = 0;
  const size_t bins = std::min(a.size(), b.size());
  for (size_t i = 0; i + 1 < bins; ++i) {
    cdf_a += a[i], cdf_b += b[i];
    area += std::abs(cdf_a - cdf_b);
  }
  return bins > 1 ? area / double(bins - 1) : 0;
}

DataProfile profile_patients(const SliceStore& store, const std::vector<std::string>& patients) {
  DataProfile profile;
  const std::set<std::string> wanted(patients.begin(), patients.end());
  // Rows of each wanted patient, in store order.
  std::map<std::string, std::vector<int64_t>> rows;
  for (size_t i = 0; i < store.items.size(); ++i)
    if (wanted.count(store.items[i].patient)) rows[store.items[i].patient].push_back(int64_t(i));
  profile.patients = int(rows.size());
  if (rows.empty()) return profile;

  std::array<std::vector<double>, 3> spacing, fov;
  profile.has_geometry = true;
  for (const auto& [id, unused] : rows) {
    const auto g = store.geometry.find(id);
    if (g == store.geometry.end()) {
      profile.has_geometry = false;
      break;
    }
    for (int a = 0; a < 3; ++a) {
      spacing[size_t(a)].push_back(g->second.spacing_mm[size_t(a)]);
      fov[size_t(a)].push_back(g->second.spacing_mm[size_t(a)] * g->second.size[size_t(a)]);
      profile.max_spacing_mm = std::max(profile.max_spacing_mm, g->second.spacing_mm[size_t(a)]);
    }
  }
  if (profile.has_geometry)
    for (size_t a = 0; a < 3; ++a)
      profile.spacing_mm[a] = median(spacing[a]), profile.field_of_view_mm[a] = median(fov[a]);
  else
    profile.max_spacing_mm = 0;

  const size_t slice_bytes = size_t(store.size) * size_t(store.size);
  for (io::Sequence seq : io::kSequences) {
    std::vector<std::vector<double>> histograms;
    std::vector<uint8_t> pixels;
    for (const auto& [id, r] : rows) {
      pixels.resize(r.size() * slice_bytes);
      read_slices(store, seq, r, pixels.data());
      histograms.push_back(intensity_histogram(pixels.data(), pixels.size()));
    }
    IntensityProfile& ip = profile.intensity[size_t(seq)];
    ip.histogram.assign(kIntensityBins, 0.0);
    for (const auto& h : histograms)
      for (size_t b = 0; b < h.size(); ++b) ip.histogram[b] += h[b] / double(histograms.size());
    std::vector<double> distances;
    for (const auto& h : histograms) distances.push_back(histogram_distance(h, ip.histogram));
    std::sort(distances.begin(), distances.end());
    ip.max_distance = distances.back();
    ip.p95_distance = distances[std::min(distances.size() - 1,
                                         size_t(std::ceil(0.95 * double(distances.size()))) - 1)];
  }
  return profile;
}

std::string data_profile_to_json(const DataProfile& p) {
  nlohmann::json intensity;
  for (io::Sequence seq : io::kSequences) {
    const IntensityProfile& ip = p.intensity[size_t(seq)];
    intensity[io::sequence_name(seq)] = {{"histogram", ip.histogram},
                                         {"max_distance", ip.max_distance},
                                         {"p95_distance", ip.p95_distance}};
  }
  nlohmann::json j = {{"patients", p.patients},
                      {"description",
                       "the training patients: their grids, and per sequence the mean histogram "
                       "of the normalised brain intensities of their windows (32 bins) with "
                       "each patient's earth mover's distance to it"},
                      {"intensity", intensity}};
  if (p.has_geometry)
    j["geometry"] = {{"spacing_mm", p.spacing_mm},
                     {"field_of_view_mm", p.field_of_view_mm},
                     {"max_spacing_mm", p.max_spacing_mm}};
  return j.dump();
}

DataProfile data_profile_from_json(const std::string& json_text, const std::string& source) {
  DataProfile p;
  try {
    const auto j = nlohmann::json::parse(json_text);
    p.patients = j.at("patients").get<int>();
    if (j.contains("geometry")) {
      p.has_geometry = true;
      p.spacing_mm = j["geometry"].at("spacing_mm").get<std::array<double, 3>>();
      p.field_of_view_mm = j["geometry"].at("field_of_view_mm").get<std::array<double, 3>>();
      p.max_spacing_mm = j["geometry"].at("max_spacing_mm").get<double>();
    }
    for (io::Sequence seq : io::kSequences) {
      const auto& s = j.at("intensity").at(io::sequence_name(seq));
      IntensityProfile& ip = p.intensity[size_t(seq)];
      ip.histogram = s.at("histogram").get<std::vector<double>>();
      ip.max_distance = s.at("max_distance").get<double>();
      ip.p95_distance = s.at("p95_distance").get<double>();
      if (ip.histogram.size() != size_t(kIntensityBins))
        throw_bad_input(source, "training_data: a histogram has " +
                                    std::to_string(ip.histogram.size()) + " bins, not 32");
    }
  } catch (const nlohmann::json::exception& e) {
    throw_bad_input(source, std::string("malformed training_data: ") + e.what());
  }
  return p;
}

}  // namespace gg::prep
