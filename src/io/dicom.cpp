// DICOM series in and out, with ITK's GDCM IO. A series directory is listed with
// GDCMSeriesFileNames (series by SeriesInstanceUID, files sorted along the slice normal); each
// slice file is read on its own so that its position can be checked before the slices are
// stacked: a gantry tilt, a missing slice or uneven spacing would otherwise be stacked into a
// warped volume (ImageSeriesReader only warns, on stderr, and has no way to turn that off in
// ITK 5.2).
#include <itkGDCMImageIO.h>
#include <itkGDCMSeriesFileNames.h>
#include <itkImage.h>
#include <itkImageFileReader.h>
#include <itkImageFileWriter.h>
#include <itkMetaDataObject.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "io/internal.h"
#include "io/io.h"

namespace gg::io {

namespace {

using Vec3 = std::array<double, 3>;
using SliceImage = itk::Image<float, 3>;

double dot(const Vec3& a, const Vec3& b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }

std::string itk_text(const itk::ExceptionObject& e) {
  std::string m = e.GetDescription();
  std::replace(m.begin(), m.end(), '\n', ' ');
  while (!m.empty() && (m.back() == ' ' || m.back() == '.')) m.pop_back();
  return m;
}

std::string tag(const itk::MetaDataDictionary& dict, const std::string& key) {
  std::string value;
  itk::ExposeMetaData<std::string>(dict, key, value);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\0')) value.pop_back();
  return value;
}

std::string mm(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", x);
  return buf;
}

// True when some file in `dir` has the DICOM Part 10 signature ("DICM" after a 128-byte
// preamble). Checked first because GDCMSeriesFileNames prints a warning to stderr when it finds
// no series.
bool has_dicom_file(const fs::path& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_regular_file(ec)) continue;
    std::ifstream in(entry.path(), std::ios::binary);
    char magic[4] = {};
    if (in.seekg(128) && in.read(magic, 4) && std::memcmp(magic, "DICM", 4) == 0) return true;
  }
  return false;
}

// Lists the series of `dir` by SeriesInstanceUID only (no splitting by other tags: the UID is
// what the user names with --series).
itk::GDCMSeriesFileNames::Pointer scan(const fs::path& dir) {
  auto names = itk::GDCMSeriesFileNames::New();
  names->SetUseSeriesDetails(false);
  try {
    names->SetDirectory(dir.string());
  } catch (const itk::ExceptionObject& e) {
    throw_bad_input(dir.string(), "cannot list the DICOM files: " + itk_text(e),
                    "check the directory is readable");
  }
  return names;
}

struct Slice {
  fs::path file;
  SliceImage::Pointer image;
  Vec3 position{}, row{}, column{};
};

Slice read_slice(const std::string& file) {
  auto reader = itk::ImageFileReader<SliceImage>::New();
  reader->SetImageIO(itk::GDCMImageIO::New());
  reader->SetFileName(file);
  try {
    reader->Update();
  } catch (const itk::ExceptionObject& e) {
    throw_bad_input(file, "cannot read DICOM slice: " + itk_text(e),
                    "the file is damaged or not an image: export the series again");
  }
  Slice s;
  s.file = file;
  s.image = reader->GetOutput();
  for (size_t k = 0; k < 3; ++k) {
    s.position[k] = s.image->GetOrigin()[unsigned(k)];
    s.row[k] = s.image->GetDirection()(unsigned(k), 0);
    s.column[k] = s.image->GetDirection()(unsigned(k), 1);
  }
  if (tag(reader->GetImageIO()->GetMetaDataDictionary(), "0020|0032").empty())
    throw_bad_input(file, "DICOM slice has no ImagePositionPatient (0020,0032)",
                    "the slices cannot be placed in space: export the series with its geometry "
                    "(or convert it to NIfTI with dcm2niix)");
  return s;
}

// The slices must stack along the slice normal (checked here) at one spacing (check_steps):
// otherwise stacking them would warp the anatomy. Returns each slice's distance from the first
// along the normal; throws naming the offending file.
std::vector<double> along_normal(const std::vector<Slice>& slices, const Vec3& normal,
                                 const fs::path& dir) {
  const Slice& first = slices.front();
  std::vector<double> along(slices.size());
  for (size_t i = 0; i < slices.size(); ++i) {
    const Slice& s = slices[i];
    if (std::abs(dot(s.row, first.row) - 1) > 1e-4 ||
        std::abs(dot(s.column, first.column) - 1) > 1e-4)
      throw_bad_input(s.file.string(),
                      "slice orientation (ImageOrientationPatient) differs from the first slice's "
                      "(" +
                          first.file.filename().string() + ")",
                      "the directory mixes acquisitions: give one series with one orientation");
    Vec3 offset{};
    for (size_t k = 0; k < 3; ++k) offset[k] = s.position[k] - first.position[k];
    along[i] = dot(offset, normal);
    double side = 0;
    for (size_t k = 0; k < 3; ++k) side += std::pow(offset[k] - along[i] * normal[k], 2);
    side = std::sqrt(side);
    // 0.002 ≈ tan(0.1°); the constant absorbs the rounding of positions written as text.
    if (side > 0.05 + 0.002 * std::abs(along[i]))
      throw_bad_input(dir.string(),
                      "gantry tilt: slice " + s.file.filename().string() + " is " + mm(side) +
                          " mm off the slice normal through the first slice, " + mm(along[i]) +
                          " mm away (tilt about " +
                          mm(std::atan2(side, std::abs(along[i])) * 180 / M_PI) + " degrees)",
                      "correct the tilt and give the result (e.g. dcm2niix, which resamples "
                      "tilted series, then the NIfTI file)");
  }
  return along;
}

// Returns the slice spacing, negative when the files run against the normal; throws for
// duplicate positions, a gap (missing slices) or uneven steps, naming the files on both sides.
double check_steps(const std::vector<double>& along, const std::vector<Slice>& slices,
                   const fs::path& dir) {
  std::vector<double> steps;
  for (size_t i = 1; i < along.size(); ++i) steps.push_back(along[i] - along[i - 1]);
  for (size_t i = 0; i < steps.size(); ++i)
    if (std::abs(steps[i]) < 1e-3)
      throw_bad_input(dir.string(),
                      "slices " + slices[i].file.filename().string() + " and " +
                          slices[i + 1].file.filename().string() + " are at the same position",
                      "the directory holds duplicate slices or two acquisitions with one "
                      "SeriesInstanceUID: keep one copy of each slice");
  std::vector<double> sorted = steps;
  std::nth_element(sorted.begin(), sorted.begin() + long(sorted.size() / 2), sorted.end());
  const double median = std::abs(sorted[sorted.size() / 2]);
  for (size_t i = 0; i < steps.size(); ++i) {
    const double step = steps[i] * (sorted[sorted.size() / 2] < 0 ? -1 : 1);
    if (step > 1.5 * median) {
      const long missing = std::lround(step / median) - 1;
      throw_bad_input(dir.string(),
                      "missing slice: a gap of " + mm(step) + " mm between " +
                          slices[i].file.filename().string() + " and " +
                          slices[i + 1].file.filename().string() + " (about " +
                          std::to_string(missing) + " slice(s) missing; elsewhere slices are " +
                          mm(median) + " mm apart)",
                      "the series is incomplete: export it again from the scanner or PACS");
    }
    if (std::abs(step - median) > std::max(0.01, 0.01 * median))
      throw_bad_input(dir.string(),
                      "non-uniform slice spacing: " + mm(step) + " mm between " +
                          slices[i].file.filename().string() + " and " +
                          slices[i + 1].file.filename().string() + ", " + mm(median) +
                          " mm elsewhere",
                      "resample the series onto a uniform grid (e.g. dcm2niix) and give the NIfTI "
                      "file");
  }
  return (along.back() - along.front()) / double(along.size() - 1);
}

// Stacks checked slices into one volume in stored (file) order, then reorients it.
Volume stack(const std::vector<Slice>& slices, const fs::path& dir) {
  const Slice& first = slices.front();
  const auto region = first.image->GetLargestPossibleRegion().GetSize();
  const Vec3 normal{first.row[1] * first.column[2] - first.row[2] * first.column[1],
                    first.row[2] * first.column[0] - first.row[0] * first.column[2],
                    first.row[0] * first.column[1] - first.row[1] * first.column[0]};
  const double step = check_steps(along_normal(slices, normal, dir), slices, dir);
  detail::StoredGeometry g;
  g.size = {int64_t(region[0]), int64_t(region[1]), int64_t(slices.size())};
  g.spacing = {first.image->GetSpacing()[0], first.image->GetSpacing()[1], std::abs(step)};
  for (size_t k = 0; k < 3; ++k) {
    g.origin[k] = first.position[k];
    g.direction[k * 3 + 0] = first.row[k];
    g.direction[k * 3 + 1] = first.column[k];
    g.direction[k * 3 + 2] = step < 0 ? -normal[k] : normal[k];  // the way the files go
  }
  detail::check_geometry(g, dir);
  const size_t per_slice = size_t(g.size[0] * g.size[1]);
  std::vector<float> stored(per_slice * slices.size());
  for (size_t i = 0; i < slices.size(); ++i) {
    const auto size = slices[i].image->GetLargestPossibleRegion().GetSize();
    if (size[0] != region[0] || size[1] != region[1] || size[2] != 1)
      throw_bad_input(
          slices[i].file.string(),
          "slice size differs from the first slice's (" + first.file.filename().string() + ")",
          "the directory mixes acquisitions: give one series");
    std::copy_n(slices[i].image->GetBufferPointer(), per_slice,
                stored.begin() + long(i * per_slice));
  }
  return detail::canonical_volume(g, stored.data(), dir);
}

std::string describe(const std::vector<DicomSeries>& all) {
  std::string out;
  for (const DicomSeries& s : all)
    out += (out.empty() ? "" : "; ") + s.uid + " \"" + s.description + "\" (" +
           std::to_string(s.slices) + " slices)";
  return out;
}

}  // namespace

std::vector<DicomSeries> list_dicom_series(const fs::path& dir) {
  if (!has_dicom_file(dir)) return {};
  auto names = scan(dir);
  std::vector<DicomSeries> out;
  for (const std::string& uid : names->GetSeriesUIDs()) {
    const std::vector<std::string> files = names->GetFileNames(uid);
    DicomSeries s{uid, "", int(files.size())};
    if (!files.empty()) {
      auto io = itk::GDCMImageIO::New();
      io->SetFileName(files.front());
      try {
        io->ReadImageInformation();
        s.description = tag(io->GetMetaDataDictionary(), "0008|103e");
      } catch (const itk::ExceptionObject&) {
        // The description is only a label in a list; reading the series reports the file.
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

Volume read_dicom_series(const fs::path& dir, const VolumeReadOptions& options) {
  const char* const no_dicom_fix =
      "give a DICOM series directory, or a volume file (.nii/.nii.gz, .nrrd, .mha)";
  if (!has_dicom_file(dir))
    throw_bad_input(dir.string(),
                    "is a directory with no DICOM files in it (none starts with "
                    "the DICOM signature)",
                    no_dicom_fix);
  auto names = scan(dir);
  const std::vector<std::string> uids = names->GetSeriesUIDs();
  if (uids.empty())
    throw_bad_input(dir.string(), "is a directory with no DICOM image series in it", no_dicom_fix);
  std::vector<std::string> chosen;
  for (const std::string& uid : uids)
    if (std::find(options.series_uids.begin(), options.series_uids.end(), uid) !=
        options.series_uids.end())
      chosen.push_back(uid);
  if (chosen.empty() && uids.size() == 1) chosen = uids;
  if (chosen.size() != 1)
    throw_bad_input(
        dir.string(),
        std::string(chosen.empty() ? "holds " + std::to_string(uids.size()) + " DICOM series"
                                   : "holds more than one of the series asked for") +
            ": " + describe(list_dicom_series(dir)),
        "choose one with --series UID (SeriesInstanceUID as listed; --series flair=UID "
        "for one input only)");
  const std::vector<std::string> files = names->GetFileNames(chosen.front());
  std::vector<Slice> slices;
  for (const std::string& file : files) slices.push_back(read_slice(file));
  if (slices.size() == 1) {  // one file: a multi-frame volume, or a single slice
    const auto size = slices[0].image->GetLargestPossibleRegion().GetSize();
    if (size[2] < 2)
      throw_bad_input(dir.string(), "DICOM series " + chosen.front() + " has only one slice",
                      "give a 3-D series (several slices)");
    detail::StoredGeometry g;
    for (unsigned k = 0; k < 3; ++k) {
      g.size[k] = int64_t(size[k]);
      g.spacing[k] = slices[0].image->GetSpacing()[k];
      g.origin[k] = slices[0].image->GetOrigin()[k];
      for (unsigned c = 0; c < 3; ++c)
        g.direction[k * 3 + c] = slices[0].image->GetDirection()(k, c);
    }
    detail::check_geometry(g, dir);
    return detail::canonical_volume(g, slices[0].image->GetBufferPointer(), dir);
  }
  return stack(slices, dir);
}

void write_dicom_series(const Volume& volume, const fs::path& dir, const std::string& series_uid,
                        const std::string& description) {
  if (volume.num_voxels() <= 0 || int64_t(volume.voxels.size()) != volume.num_voxels())
    throw_runtime(dir.string(), "cannot write DICOM series: voxel count does not match its size");
  std::error_code ec;
  fs::create_directories(dir, ec);
  using Image = itk::Image<int16_t, 3>;
  const auto nx = size_t(volume.size[0]), ny = size_t(volume.size[1]);
  auto ds = [](double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.6f", x);
    return std::string(buf);
  };
  const std::array<double, 9>& d = volume.direction;
  const std::string orientation = ds(d[0]) + "\\" + ds(d[3]) + "\\" + ds(d[6]) + "\\" + ds(d[1]) +
                                  "\\" + ds(d[4]) + "\\" + ds(d[7]);
  for (int z = 0; z < volume.size[2]; ++z) {
    // One single-slice image per file: its origin is the slice's position.
    auto image = Image::New();
    Image::SizeType size{{nx, ny, 1}};
    image->SetRegions(Image::RegionType(size));
    Image::SpacingType spacing;
    Image::PointType origin;
    Image::DirectionType direction;
    for (unsigned k = 0; k < 3; ++k) {
      spacing[k] = volume.spacing_mm[k];
      origin[k] = volume.origin_mm[k] + z * volume.spacing_mm[2] * d[k * 3 + 2];
      for (unsigned c = 0; c < 3; ++c) direction(k, c) = d[k * 3 + c];
    }
    image->SetSpacing(spacing);
    image->SetOrigin(origin);
    image->SetDirection(direction);
    image->Allocate();
    int16_t* out = image->GetBufferPointer();
    for (size_t i = 0; i < nx * ny; ++i) {
      const float v = std::round(volume.voxels[size_t(z) * nx * ny + i]);
      out[i] = static_cast<int16_t>(std::clamp(v, -32768.0f, 32767.0f));
    }
    auto io = itk::GDCMImageIO::New();
    io->KeepOriginalUIDOn();  // keep the SeriesInstanceUID given below
    itk::MetaDataDictionary& dict = image->GetMetaDataDictionary();
    const std::string n = std::to_string(z + 1);
    itk::EncapsulateMetaData<std::string>(dict, "0008|0016", "1.2.840.10008.5.1.4.1.1.4");  // MR
    itk::EncapsulateMetaData<std::string>(dict, "0008|0018", series_uid + "." + n);
    itk::EncapsulateMetaData<std::string>(dict, "0008|0060", "MR");
    itk::EncapsulateMetaData<std::string>(dict, "0028|0004", "MONOCHROME2");
    itk::EncapsulateMetaData<std::string>(dict, "0008|103e", description);
    itk::EncapsulateMetaData<std::string>(dict, "0020|000d", series_uid + ".0");
    itk::EncapsulateMetaData<std::string>(dict, "0020|000e", series_uid);
    itk::EncapsulateMetaData<std::string>(dict, "0020|0013", n);
    itk::EncapsulateMetaData<std::string>(
        dict, "0020|0032", ds(origin[0]) + "\\" + ds(origin[1]) + "\\" + ds(origin[2]));
    itk::EncapsulateMetaData<std::string>(dict, "0020|0037", orientation);
    itk::EncapsulateMetaData<std::string>(dict, "0018|0050", ds(volume.spacing_mm[2]));
    itk::EncapsulateMetaData<std::string>(dict, "0018|0088", ds(volume.spacing_mm[2]));
    auto writer = itk::ImageFileWriter<Image>::New();
    writer->SetImageIO(io);
    writer->SetInput(image);
    char name[32];
    std::snprintf(name, sizeof name, "slice%04d.dcm", z + 1);
    writer->SetFileName((dir / name).string());
    try {
      writer->Update();
    } catch (const itk::ExceptionObject& e) {
      throw_runtime((dir / name).string(), "cannot write DICOM slice: " + itk_text(e),
                    "check the directory is writable");
    }
  }
}

}  // namespace gg::io
