// Reading and writing volumes with ITK. ITK stays inside this file (and the other io/*.cpp):
// io.h exposes only plain value types.
#include <itkImage.h>
#include <itkImageFileWriter.h>
#include <itkImageIOBase.h>
#include <itkImageIOFactory.h>
#include <itkMetaImageIOFactory.h>
#include <itkNiftiImageIOFactory.h>
#include <itkNrrdImageIOFactory.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <mutex>

#include "common/error.h"
#include "common/files.h"
#include "io/internal.h"
#include "io/io.h"

namespace gg::io {

using detail::StoredGeometry;

namespace {

// With target-based linking ITK's IO factories are not registered by static initialisers, so
// register the formats we support once, explicitly.
void register_image_io() {
  static std::once_flag once;
  std::call_once(once, [] {
    itk::NiftiImageIOFactory::RegisterOneFactory();
    itk::NrrdImageIOFactory::RegisterOneFactory();
    itk::MetaImageIOFactory::RegisterOneFactory();
  });
}

// ITK's messages carry source locations and line breaks; keep the description only.
std::string itk_message(const itk::ExceptionObject& e) {
  std::string m = e.GetDescription();
  std::replace(m.begin(), m.end(), '\n', ' ');
  while (!m.empty() && (m.back() == ' ' || m.back() == '.')) m.pop_back();
  return m;
}

const char* const kReadFix =
    "check the file is a complete 3-D NIfTI (.nii/.nii.gz), NRRD or MHA image";

// Opens the header and checks the image is a single 3-D scalar volume.
itk::ImageIOBase::Pointer open_header(const fs::path& path) {
  itk::ImageIOBase::Pointer image_io =
      itk::ImageIOFactory::CreateImageIO(path.c_str(), itk::ImageIOFactory::ReadMode);
  if (!image_io)
    throw_bad_input(path.string(), "not an image file ITK can read (unknown or corrupt format)",
                    kReadFix);
  image_io->SetFileName(path.string());
  try {
    image_io->ReadImageInformation();
  } catch (const itk::ExceptionObject& e) {
    throw_bad_input(path.string(), "cannot read image header: " + itk_message(e), kReadFix);
  }
  const unsigned dims = image_io->GetNumberOfDimensions();
  if (dims < 3)
    throw_bad_input(path.string(),
                    "is a " + std::to_string(dims) + "-D image, expected a 3-D volume",
                    "give the 3-D volume, not a single slice");
  if (dims > 3) {
    for (unsigned d = 3; d < dims; ++d) {
      if (image_io->GetDimensions(d) > 1)
        throw_bad_input(path.string(),
                        "is a " + std::to_string(dims) + "-D image with " +
                            std::to_string(image_io->GetDimensions(d)) +
                            " volumes, expected one 3-D volume",
                        "extract the 3-D volume of this sequence (e.g. fslroi) and give that");
    }
  }
  for (unsigned d = 0; d < 3; ++d) {
    if (image_io->GetDimensions(d) < 2)
      throw_bad_input(path.string(),
                      "has only " + std::to_string(image_io->GetDimensions(d)) +
                          " voxel along axis " + std::to_string(d) + ", expected a 3-D volume",
                      "give the 3-D volume, not a single slice");
  }
  if (image_io->GetNumberOfComponents() != 1 ||
      image_io->GetPixelType() != itk::IOPixelEnum::SCALAR)
    throw_bad_input(path.string(),
                    "has " + std::to_string(image_io->GetNumberOfComponents()) + "-component (" +
                        image_io->GetPixelTypeAsString(image_io->GetPixelType()) +
                        ") voxels, expected scalar intensities",
                    "convert it to a scalar (grey-level) volume");
  return image_io;
}

StoredGeometry stored_geometry(const itk::ImageIOBase& io) {
  StoredGeometry g;
  for (unsigned c = 0; c < 3; ++c) {
    g.size[c] = static_cast<int64_t>(io.GetDimensions(c));
    g.spacing[c] = io.GetSpacing(c);
    g.origin[c] = io.GetOrigin(c);
    const std::vector<double> axis = io.GetDirection(c);
    for (unsigned r = 0; r < 3; ++r) g.direction[r * 3 + c] = r < axis.size() ? axis[r] : 0.0;
  }
  return g;
}

// Where canonical voxel (x, y, z) is in the stored buffer: start + x·step[0] + y·step[1] +
// z·step[2].
struct Mapping {
  int64_t start = 0;
  std::array<int64_t, 3> step{};
};

// The canonical (LPS+, identity direction) geometry of a stored image, and where its voxels come
// from: each stored axis goes to the physical axis its direction cosine is largest along, reversed
// if it points the other way (oblique directions snapped to the nearest axes, as ITK's
// OrientImageFilter does; axes are permuted and flipped, never interpolated). Every voxel keeps its
// physical position: the origin becomes that of the stored voxel now at (0,0,0), and the
// direction is the stored one with its columns permuted and negated (the identity unless oblique).
Mapping canonical_layout(const StoredGeometry& g, const fs::path& path, Volume& v) {
  std::array<int, 3> axis_of{-1, -1, -1};  // canonical axis r is stored axis axis_of[r]
  std::array<bool, 3> flip{};
  for (int c = 0; c < 3; ++c) {
    int r = 0;
    for (int k = 1; k < 3; ++k)
      if (std::abs(g.d(k, c)) > std::abs(g.d(r, c))) r = k;
    if (axis_of[size_t(r)] >= 0)
      throw_bad_input(path.string(), "degenerate direction matrix (two axes point the same way)",
                      "fix the file's orientation header (qform/sform)");
    axis_of[size_t(r)] = c;
    flip[size_t(r)] = g.d(r, c) < 0;
  }
  const std::array<int64_t, 3> stride{1, g.size[0], g.size[0] * g.size[1]};
  std::array<int64_t, 3> corner{};  // stored index of canonical (0,0,0)
  Mapping m;
  for (int r = 0; r < 3; ++r) {
    const auto c = size_t(axis_of[size_t(r)]);
    v.size[size_t(r)] = static_cast<int>(g.size[c]);
    v.spacing_mm[size_t(r)] = g.spacing[c];
    corner[c] = flip[size_t(r)] ? g.size[c] - 1 : 0;
    m.step[size_t(r)] = flip[size_t(r)] ? -stride[c] : stride[c];
    for (int k = 0; k < 3; ++k)
      v.direction[size_t(k * 3 + r)] = (flip[size_t(r)] ? -1.0 : 1.0) * g.d(k, int(c));
  }
  for (int k = 0; k < 3; ++k) {
    double p = g.origin[size_t(k)];
    for (int c = 0; c < 3; ++c) p += g.d(k, c) * g.spacing[size_t(c)] * double(corner[size_t(c)]);
    v.origin_mm[size_t(k)] = p;
  }
  m.start = corner[0] * stride[0] + corner[1] * stride[1] + corner[2] * stride[2];
  return m;
}

// Converts the stored voxels (type T) to float in canonical order, in one pass.
template <typename T>
void gather(const char* raw, const Mapping& m, Volume& v) {
  const T* src = reinterpret_cast<const T*>(raw);
  v.voxels.resize(size_t(v.num_voxels()));
  float* out = v.voxels.data();
  for (int z = 0; z < v.size[2]; ++z)
    for (int y = 0; y < v.size[1]; ++y) {
      const T* p = src + m.start + z * m.step[2] + y * m.step[1];
      if (m.step[0] == 1) {
        for (int x = 0; x < v.size[0]; ++x) *out++ = static_cast<float>(p[x]);
      } else {
        for (int x = 0; x < v.size[0]; ++x, p += m.step[0]) *out++ = static_cast<float>(*p);
      }
    }
}

void gather_any(itk::IOComponentEnum type, const char* raw, const Mapping& m, Volume& v,
                const fs::path& path) {
  using C = itk::IOComponentEnum;
  switch (type) {
    case C::UCHAR:
      return gather<uint8_t>(raw, m, v);
    case C::CHAR:
      return gather<int8_t>(raw, m, v);
    case C::USHORT:
      return gather<uint16_t>(raw, m, v);
    case C::SHORT:
      return gather<int16_t>(raw, m, v);
    case C::UINT:
      return gather<uint32_t>(raw, m, v);
    case C::INT:
      return gather<int32_t>(raw, m, v);
    case C::ULONG:
      return gather<unsigned long>(raw, m, v);
    case C::LONG:
      return gather<long>(raw, m, v);
    case C::ULONGLONG:
      return gather<unsigned long long>(raw, m, v);
    case C::LONGLONG:
      return gather<long long>(raw, m, v);
    case C::FLOAT:
      return gather<float>(raw, m, v);
    case C::DOUBLE:
      return gather<double>(raw, m, v);
    default:
      break;
  }
  throw_bad_input(path.string(),
                  "unsupported voxel type " + itk::ImageIOBase::GetComponentTypeAsString(type),
                  "convert it to an integer or float volume");
}

template <typename Pixel>
typename itk::Image<Pixel, 3>::Pointer to_itk_image(const Volume& v) {
  using ImageType = itk::Image<Pixel, 3>;
  auto image = ImageType::New();
  typename ImageType::SizeType size;
  typename ImageType::SpacingType spacing;
  typename ImageType::PointType origin;
  typename ImageType::DirectionType direction;
  for (unsigned i = 0; i < 3; ++i) {
    size[i] = static_cast<itk::SizeValueType>(v.size[i]);
    spacing[i] = v.spacing_mm[i];
    origin[i] = v.origin_mm[i];
    for (unsigned c = 0; c < 3; ++c) direction(i, c) = v.direction[i * 3 + c];
  }
  image->SetRegions(typename ImageType::RegionType(size));
  image->SetSpacing(spacing);
  image->SetOrigin(origin);
  image->SetDirection(direction);
  image->Allocate();
  Pixel* out = image->GetBufferPointer();
  for (int64_t i = 0; i < v.num_voxels(); ++i) {
    if constexpr (std::is_same_v<Pixel, int16_t>) {
      const float r = std::round(v.voxels[size_t(i)]);
      out[i] = static_cast<int16_t>(std::clamp(r, -32768.0f, 32767.0f));
    } else {
      out[i] = v.voxels[size_t(i)];
    }
  }
  return image;
}

// The extension ITK uses to pick a format, kept on temporaries: ".nii.gz" for "a.nii.gz".
std::string full_extension(const fs::path& path) {
  const std::string name = path.filename().string();
  for (const char* ext : {".nii.gz", ".nii", ".nrrd", ".nhdr", ".mha", ".mhd"}) {
    const std::string e = ext;
    if (name.size() > e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0) return e;
  }
  return path.extension().string();
}

template <typename Pixel>
void write_with_itk(const Volume& volume, const fs::path& tmp) {
  using Writer = itk::ImageFileWriter<itk::Image<Pixel, 3>>;
  auto writer = Writer::New();
  writer->SetFileName(tmp.string());
  writer->SetInput(to_itk_image<Pixel>(volume));
  writer->SetUseCompression(true);
  writer->Update();
}

}  // namespace

Volume read_volume(const fs::path& path, const VolumeReadOptions& options) {
  register_image_io();
  std::error_code ec;
  if (!fs::exists(path, ec)) throw_bad_input(path.string(), "file not found", "check the path");
  if (fs::is_directory(path, ec)) return read_dicom_series(path, options);
  if (!fs::is_regular_file(path, ec))
    throw_bad_input(path.string(), "is not a regular file",
                    "give the path of an image file or of a DICOM series directory");
  detail::check_nifti_header(path);
  itk::ImageIOBase::Pointer image_io = open_header(path);
  detail::check_nifti_data(path);

  // Read the stored voxels with the file's own type, then convert and reorient in one pass: no
  // intermediate float image, which halves the memory traffic of the slowest step of prepare.
  const StoredGeometry stored = stored_geometry(*image_io);
  detail::check_geometry(stored, path);
  Volume v;
  const Mapping mapping = canonical_layout(stored, path, v);
  std::vector<char> raw(image_io->GetImageSizeInBytes());
  try {
    const unsigned dims = image_io->GetNumberOfDimensions();
    itk::ImageIORegion region(dims);
    for (unsigned i = 0; i < dims; ++i) {
      region.SetIndex(i, 0);
      region.SetSize(i, image_io->GetDimensions(i));
    }
    image_io->SetIORegion(region);
    image_io->Read(raw.data());
  } catch (const itk::ExceptionObject& e) {
    throw_bad_input(path.string(),
                    "cannot read voxel data (truncated or corrupt?): " + itk_message(e), kReadFix);
  }
  gather_any(image_io->GetComponentType(), raw.data(), mapping, v, path);
  return v;
}

namespace detail {

void check_geometry(const StoredGeometry& g, const fs::path& path) {
  bool spacing_ok = true, origin_ok = true, direction_ok = true;
  for (size_t i = 0; i < 3; ++i) {
    spacing_ok &= std::isfinite(g.spacing[i]) && g.spacing[i] > 0;
    origin_ok &= std::isfinite(g.origin[i]);
  }
  for (double d : g.direction) direction_ok &= std::isfinite(d);
  if (!spacing_ok)
    throw_bad_input(
        path.string(),
        "voxel spacing is " + format_triple(g.spacing) + " mm: it must be finite and positive",
        "set the true voxel size in the header or re-export the volume from the "
        "scanner data");
  if (!origin_ok)
    throw_bad_input(path.string(),
                    "origin is " + format_triple(g.origin) + " mm: it must be finite",
                    "fix the position in the header or re-export the volume");
  if (!direction_ok)
    throw_bad_input(path.string(), "direction (orientation) matrix holds NaN or infinite values",
                    "fix the orientation header or re-export the volume");
}

Volume canonical_volume(const StoredGeometry& g, const float* stored, const fs::path& path) {
  Volume v;
  const Mapping mapping = canonical_layout(g, path, v);
  gather<float>(reinterpret_cast<const char*>(stored), mapping, v);
  return v;
}

}  // namespace detail

void write_volume(const Volume& volume, const fs::path& path, bool as_int16) {
  register_image_io();
  if (volume.num_voxels() <= 0 || int64_t(volume.voxels.size()) != volume.num_voxels())
    throw_runtime(path.string(), "cannot write volume: voxel count does not match its size");
  std::error_code ec;
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  // Temporary beside the target with the same extension (ITK picks the format from it).
  const std::string ext = full_extension(path), name = path.filename().string();
  const fs::path tmp = path.parent_path() / ("." + name.substr(0, name.size() - ext.size()) +
                                             ".tmp-" + unique_suffix() + ext);
  try {
    if (as_int16)
      write_with_itk<int16_t>(volume, tmp);
    else
      write_with_itk<float>(volume, tmp);
  } catch (const itk::ExceptionObject& e) {
    fs::remove(tmp, ec);
    throw_runtime(
        path.string(), "cannot write volume: " + itk_message(e),
        "check the directory is writable and the extension is .nii, .nii.gz, .nrrd or .mha");
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw_runtime(path.string(), "cannot rename temporary file into place: " + ec.message());
  }
}

}  // namespace gg::io
