// NIfTI checks on the raw file, around ITK's reader: what nifti1_io would repair silently (NaN
// spacing becomes 1 mm, an infinite offset 0, NaN voxels 0, a short file zero-filled), print to
// stderr ("** ERROR: nifti_convert_nhdr2nim: bad dim[1]"), or abort the process on (vnl aborts on
// a NaN in the sform), we refuse first with one kBadInput line.
#include <zlib.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <vector>

#include "common/error.h"
#include "io/internal.h"

namespace gg::io::detail {

namespace {

// Two things NIfTI readers (ITK's included, through nifti1_io) do silently that we must not:
// a file whose voxel data ends early is zero-filled, and NaN/Inf float voxels are replaced by 0.
// So for .nii/.nii.gz we check the data length ourselves, and scan float data for non-finite
// values, before ITK reads the file.
std::string nifti_ext(const fs::path& path) {
  const std::string name = path.filename().string();
  if (name.size() > 7 && name.compare(name.size() - 7, 7, ".nii.gz") == 0) return ".nii.gz";
  if (name.size() > 4 && name.compare(name.size() - 4, 4, ".nii") == 0) return ".nii";
  return {};
}

template <typename T>
T load(const unsigned char* p, bool swap) {
  unsigned char b[sizeof(T)];
  std::memcpy(b, p, sizeof(T));
  if (swap) std::reverse(b, b + sizeof(T));
  T v;
  std::memcpy(&v, b, sizeof(T));
  return v;
}

struct NiftiLayout {
  int64_t vox_offset = 0, data_bytes = 0;
  int datatype = 0;
  bool swap = false;
  int64_t end() const { return vox_offset + data_bytes; }
  int float_bytes() const { return datatype == 16 ? 4 : datatype == 64 ? 8 : 0; }  // FLOAT32/64
};

// Parses a NIfTI-1 or NIfTI-2 header; false if it is not one.
bool parse_nifti_header(const unsigned char* h, size_t n, NiftiLayout& out) {
  for (bool swap : {false, true}) {
    if (n >= 348 && load<int32_t>(h, swap) == 348) {
      const int ndim = std::clamp<int>(load<int16_t>(h + 40, swap), 0, 7);
      int64_t voxels = 1;
      for (int i = 1; i <= ndim; ++i)
        voxels *= std::max<int64_t>(1, load<int16_t>(h + 40 + 2 * i, swap));
      out = {static_cast<int64_t>(load<float>(h + 108, swap)),
             voxels * load<int16_t>(h + 72, swap) / 8, load<int16_t>(h + 70, swap), swap};
      return true;
    }
    if (n >= 540 && load<int32_t>(h, swap) == 540) {
      const int64_t ndim = std::clamp<int64_t>(load<int64_t>(h + 16, swap), 0, 7);
      int64_t voxels = 1;
      for (int64_t i = 1; i <= ndim; ++i)
        voxels *= std::max<int64_t>(1, load<int64_t>(h + 16 + 8 * i, swap));
      out = {load<int64_t>(h + 168, swap), voxels * load<int16_t>(h + 14, swap) / 8,
             load<int16_t>(h + 12, swap), swap};
      return true;
    }
  }
  return false;
}

void throw_truncated(const fs::path& path, int64_t have, int64_t need) {
  throw_bad_input(path.string(),
                  "file is truncated: " + std::to_string(have) + " of " + std::to_string(need) +
                      " bytes of header and voxel data present",
                  "the file was cut short (interrupted download or copy): fetch it again");
}

// gzip keeps the uncompressed length mod 2^32 in its last 4 bytes. A file cut at a random point
// ends in random bytes, which match the expected length with probability 2^-32.
bool gzip_trailer_says(const fs::path& path, int64_t length) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  const auto size = static_cast<int64_t>(in.tellg());
  if (size < 18) return false;
  unsigned char tail[4];
  in.seekg(size - 4);
  in.read(reinterpret_cast<char*>(tail), 4);
  const uint32_t isize = uint32_t(tail[0]) | uint32_t(tail[1]) << 8 | uint32_t(tail[2]) << 16 |
                         uint32_t(tail[3]) << 24;
  return in && isize == static_cast<uint32_t>(length);
}

template <typename T>
int64_t count_non_finite(const char* data, int64_t bytes, bool swap) {
  int64_t n = 0;
  for (int64_t i = 0; i + int64_t(sizeof(T)) <= bytes; i += sizeof(T))
    n += !std::isfinite(load<T>(reinterpret_cast<const unsigned char*>(data + i), swap));
  return n;
}

// The datatype codes nifti1_io accepts (nifti1.h); others make it print "bad datatype".
bool known_datatype(int code) {
  for (int c : {2, 4, 8, 16, 32, 64, 128, 256, 512, 768, 1024, 1280, 1536, 1792, 2048, 2304})
    if (code == c) return true;
  return false;
}

const char* const kHeaderFix =
    "the header is damaged: re-export the volume from the scanner data or fetch the file again";

// The NIfTI-1 header fields nifti1_io would complain about or silently change.
void check_nifti1_fields(const unsigned char* h, bool swap, const fs::path& path) {
  const int ndim = load<int16_t>(h + 40, swap);
  if (ndim < 1 || ndim > 7)
    throw_bad_input(path.string(),
                    "NIfTI header has dim[0] = " + std::to_string(ndim) +
                        " (the number of dimensions must be 1 to 7)",
                    kHeaderFix);
  for (int i = 1; i <= ndim; ++i) {
    const int n = load<int16_t>(h + 40 + 2 * i, swap);
    if (n < 1)
      throw_bad_input(path.string(),
                      "NIfTI header has dim[" + std::to_string(i) + "] = " + std::to_string(n) +
                          " (every axis needs at least one voxel)",
                      kHeaderFix);
  }
  const int datatype = load<int16_t>(h + 70, swap);
  if (!known_datatype(datatype))
    throw_bad_input(path.string(),
                    "NIfTI header has unknown datatype code " + std::to_string(datatype),
                    kHeaderFix);
  std::array<double, 3> pixdim{1, 1, 1};
  bool bad = false;
  for (int i = 0; i < std::min(ndim, 3); ++i) {
    pixdim[size_t(i)] = load<float>(h + 80 + 4 * i, swap);
    bad |= !(std::isfinite(pixdim[size_t(i)]) && pixdim[size_t(i)] > 0);
  }
  if (bad)
    throw_bad_input(path.string(),
                    "voxel spacing (pixdim) is " + format_triple(pixdim) +
                        " mm: it must be finite and positive",
                    "set the true voxel size in the header (pixdim[1..3]) or re-export the volume "
                    "from the scanner data");
  auto all_finite = [&](int offset, int count) {
    for (int i = 0; i < count; ++i)
      if (!std::isfinite(load<float>(h + offset + 4 * i, swap))) return false;
    return true;
  };
  // qform: quatern_b/c/d, qoffset_x/y/z; sform: srow_x/y/z.
  if (load<int16_t>(h + 252, swap) > 0 && !all_finite(256, 6))
    throw_bad_input(path.string(),
                    "NIfTI qform (quatern_b/c/d, qoffset_x/y/z) holds NaN or infinite values",
                    "fix the orientation header (or set qform_code to 0 if the sform is valid), "
                    "or re-export the volume");
  if (load<int16_t>(h + 254, swap) > 0 && !all_finite(280, 12))
    throw_bad_input(path.string(), "NIfTI sform (srow_x/y/z) holds NaN or infinite values",
                    "fix the orientation header (or set sform_code to 0 if the qform is valid), "
                    "or re-export the volume");
}

}  // namespace

void check_nifti_data(const fs::path& path) {
  const std::string ext = nifti_ext(path);
  if (ext.empty()) return;
  std::unique_ptr<gzFile_s, int (*)(gzFile)> gz(gzopen(path.c_str(), "rb"), &gzclose);
  if (!gz) throw_bad_input(path.string(), "cannot open file", "check the path and permissions");
  gzbuffer(gz.get(), 1 << 18);
  unsigned char header[540] = {};
  const int got = gzread(gz.get(), header, sizeof header);
  NiftiLayout layout;
  if (!parse_nifti_header(header, got > 0 ? size_t(got) : 0, layout)) return;  // ITK will judge
  const int float_bytes = layout.float_bytes();
  if (float_bytes == 0) {  // integer voxels: only the length matters
    if (ext == ".nii") {
      const auto have = static_cast<int64_t>(fs::file_size(path));
      if (have < layout.end()) throw_truncated(path, have, layout.end());
      return;
    }
    if (gzip_trailer_says(path, layout.end())) return;
  }
  // Stream the whole file: count its bytes and, for float data, its non-finite voxels.
  gzrewind(gz.get());
  std::vector<char> chunk(1 << 20);  // a multiple of 8: float elements never straddle chunks
  int64_t have = 0, non_finite = 0;
  for (;;) {
    const int n = gzread(gz.get(), chunk.data(), static_cast<unsigned>(chunk.size()));
    if (n < 0) {
      int errnum = 0;
      throw_bad_input(path.string(),
                      std::string("corrupt gzip data: ") + gzerror(gz.get(), &errnum),
                      "the file is damaged: fetch it again");
    }
    if (n == 0) break;
    if (float_bytes > 0) {
      // The part of this chunk inside [vox_offset, end), aligned to the element grid.
      const int64_t lo = std::max(have, layout.vox_offset), hi = std::min(have + n, layout.end());
      if (hi > lo) {
        const int64_t first =
            lo + (float_bytes - (lo - layout.vox_offset) % float_bytes) % float_bytes;
        const char* p = chunk.data() + (first - have);
        non_finite += float_bytes == 4 ? count_non_finite<float>(p, hi - first, layout.swap)
                                       : count_non_finite<double>(p, hi - first, layout.swap);
      }
    }
    have += n;
  }
  if (have < layout.end()) throw_truncated(path, have, layout.end());
  if (non_finite > 0)
    throw_bad_input(path.string(), std::to_string(non_finite) + " voxels are NaN or infinite",
                    "fix or re-export the volume (NaN/Inf usually come from a failed conversion)");
}

void check_nifti_header(const fs::path& path) {
  if (nifti_ext(path).empty()) return;
  std::unique_ptr<gzFile_s, int (*)(gzFile)> gz(gzopen(path.c_str(), "rb"), &gzclose);
  if (!gz) return;  // open_header reports it
  unsigned char h[540] = {};
  const int got = gzread(gz.get(), h, sizeof h);
  const size_t n = got > 0 ? size_t(got) : 0;
  for (bool swap : {false, true}) {
    if (n >= 4 && load<int32_t>(h, swap) == 540)
      throw_bad_input(path.string(),
                      "is a NIfTI-2 file, which this build cannot read (ITK 5.2's NIfTI reader "
                      "reads NIfTI-1 only)",
                      "convert it to NIfTI-1, e.g. in Python: nibabel.save(nibabel.Nifti1Image."
                      "from_image(nibabel.load('in.nii.gz')), 'out.nii.gz')");
    if (n >= 348 && load<int32_t>(h, swap) == 348) return check_nifti1_fields(h, swap, path);
  }
}

std::string format_triple(const std::array<double, 3>& v) {
  std::string out;
  for (double x : v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", x);
    out += (out.empty() ? "" : " x ") + std::string(buf);
  }
  return out;
}

}  // namespace gg::io::detail
