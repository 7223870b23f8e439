// The slice store's files: tensor files, index.csv, store.json; opening and reading rows.
#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>
#include <map>
#include <memory>

#include "common/csv.h"
#include "common/error.h"
#include "common/files.h"
#include "prep/prep.h"
#include "prep/store_internal.h"

namespace gg::prep {

namespace internal {

namespace {

struct Fd {
  int fd;
  explicit Fd(int f) : fd(f) {}
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
};

void put_u32(char* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
void put_i64(char* p, int64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<char>((uint64_t(v) >> (8 * i)) & 0xff);
}
uint64_t get_le(const unsigned char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

void create_tensor_file(const fs::path& path, int64_t n, int h, int w) {
  char header[kTensorHeaderBytes] = {};
  std::memcpy(header, kTensorMagic, 8);
  put_u32(header + 8, kTensorVersion);
  put_u32(header + 12, 0);
  put_i64(header + 16, n);
  put_u32(header + 24, static_cast<uint32_t>(h));
  put_u32(header + 28, static_cast<uint32_t>(w));
  Fd f(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (f.fd < 0)
    throw_runtime(path.string(), std::string("cannot create file: ") + std::strerror(errno));
  if (::pwrite(f.fd, header, sizeof header, 0) != static_cast<ssize_t>(sizeof header) ||
      ::ftruncate(f.fd, kTensorHeaderBytes + n * h * w) != 0)
    throw_runtime(path.string(), std::string("cannot write: ") + std::strerror(errno),
                  "check free disk space");
}

void write_rows(const fs::path& path, int64_t first, int64_t count, int64_t row_bytes,
                const uint8_t* data) {
  Fd f(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (f.fd < 0)
    throw_runtime(path.string(), std::string("cannot open for writing: ") + std::strerror(errno));
  int64_t done = 0;
  const int64_t total = count * row_bytes;
  while (done < total) {
    const ssize_t n = ::pwrite(f.fd, data + done, size_t(total - done),
                               kTensorHeaderBytes + first * row_bytes + done);
    if (n <= 0)
      throw_runtime(path.string(), std::string("write failed: ") + std::strerror(errno),
                    "check free disk space");
    done += n;
  }
}

std::string index_csv(const std::vector<SliceItem>& items, int size) {
  const int64_t row_bytes = int64_t(size) * size;
  std::string s = "row,patient,grade,sequence,z,rank,offset\n";
  s.reserve(items.size() * 3 * 48);
  for (size_t i = 0; i < items.size(); ++i) {
    const SliceItem& it = items[i];
    const std::string common =
        std::to_string(i) + "," + csv_field(it.patient) + "," + io::grade_name(it.grade) + ",";
    const std::string tail = "," + std::to_string(it.z) + "," + std::to_string(it.rank) + "," +
                             std::to_string(kTensorHeaderBytes + int64_t(i) * row_bytes) + "\n";
    for (io::Sequence seq : io::kSequences) s += common + io::sequence_name(seq) + tail;
  }
  return s;
}

}  // namespace internal

fs::path tensor_path(const fs::path& dir, io::Sequence seq) {
  return dir / (std::string(io::sequence_name(seq)) + ".u8");
}

namespace {

const char* const kStoreFix = "run `gliomagrade prepare` again to rebuild the store";

void check_tensor_file(const fs::path& path, int64_t n, int size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_bad_input(path.string(), "slice store tensor file is missing", kStoreFix);
  unsigned char h[internal::kTensorHeaderBytes];
  in.read(reinterpret_cast<char*>(h), sizeof h);
  if (!in || std::memcmp(h, internal::kTensorMagic, 8) != 0)
    throw_bad_input(path.string(), "not a slice store tensor file (bad header)", kStoreFix);
  if (internal::get_le(h + 8, 4) != internal::kTensorVersion)
    throw_bad_input(
        path.string(),
        "tensor file version " + std::to_string(internal::get_le(h + 8, 4)) + " is not supported",
        kStoreFix);
  const auto rows = static_cast<int64_t>(internal::get_le(h + 16, 8));
  const auto height = static_cast<int>(internal::get_le(h + 24, 4));
  const auto width = static_cast<int>(internal::get_le(h + 28, 4));
  if (rows != n || height != size || width != size)
    throw_bad_input(path.string(),
                    "holds " + std::to_string(rows) + "×" + std::to_string(height) + "×" +
                        std::to_string(width) + " but index.csv says " + std::to_string(n) + "×" +
                        std::to_string(size) + "×" + std::to_string(size),
                    kStoreFix);
  const auto bytes = static_cast<int64_t>(fs::file_size(path));
  if (bytes != internal::kTensorHeaderBytes + n * size * size)
    throw_bad_input(path.string(),
                    "is " + std::to_string(bytes) + " bytes, expected " +
                        std::to_string(internal::kTensorHeaderBytes + n * size * size) +
                        " (truncated?)",
                    kStoreFix);
}

}  // namespace

SliceStore open_slice_store(const fs::path& dir) {
  SliceStore store;
  store.dir = dir;
  const fs::path json_path = dir / internal::kStoreMarker;
  if (!fs::is_regular_file(json_path))
    throw_bad_input(json_path.string(), "not a slice store (store.json missing)",
                    "give the folder written by `gliomagrade prepare`");
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(read_file(json_path));
    if (meta.at("format").get<std::string>() != "gliomagrade-slice-store")
      throw_bad_input(json_path.string(), "not a slice store", kStoreFix);
    if (meta.at("version").get<int>() != internal::kStoreFormatVersion)
      throw_bad_input(json_path.string(),
                      "slice store format version " + meta.at("version").dump() +
                          " is not supported by this gliomagrade",
                      kStoreFix);
    store.key = meta.at("key").get<std::string>();
    store.size = meta.at("options").at("size").get<int>();
    store.slices_per_patient = meta.at("options").at("slices").get<int>();
    // Stores written before gliomagrade recorded the grids have none (profiles lack geometry).
    for (const auto& input : meta.at("inputs"))
      if (input.contains("spacing_mm"))
        store.geometry[input.at("id").get<std::string>()] = {
            input.at("size").get<std::array<int, 3>>(),
            input.at("spacing_mm").get<std::array<double, 3>>()};
  } catch (const nlohmann::json::exception& e) {
    throw_bad_input(json_path.string(), std::string("corrupt store.json: ") + e.what(), kStoreFix);
  }
  const fs::path index_path = dir / "index.csv";
  if (!fs::is_regular_file(index_path))
    throw_bad_input(index_path.string(), "slice store index is missing", kStoreFix);
  const CsvTable index = read_csv(index_path);
  const int c_row = index.column("row"), c_patient = index.column("patient"),
            c_grade = index.column("grade"), c_seq = index.column("sequence"),
            c_z = index.column("z"), c_rank = index.column("rank");
  if (std::min({c_row, c_patient, c_grade, c_seq, c_z, c_rank}) < 0)
    throw_bad_input(index_path.string(),
                    "index.csv lacks a column (row,patient,grade,sequence,z,rank)", kStoreFix);
  for (size_t r = 0; r < index.rows.size(); ++r) {
    const auto& f = index.rows[r];
    const int line = index.line[r];
    const int row = csv_int(f[size_t(c_row)], index.place(r, c_row), kStoreFix);
    io::Grade grade;
    try {
      grade = io::parse_grade(f[size_t(c_grade)]);
    } catch (const Error&) {
      throw_bad_input(index_path.string(), "line " + std::to_string(line) + ": bad grade",
                      kStoreFix);
    }
    SliceItem item{f[size_t(c_patient)], grade,
                   csv_int(f[size_t(c_z)], index.place(r, c_z), kStoreFix),
                   csv_int(f[size_t(c_rank)], index.place(r, c_rank), kStoreFix)};
    const bool new_item = row == static_cast<int>(store.items.size());
    const bool repeat = !new_item && row + 1 == static_cast<int>(store.items.size());
    if (new_item) {
      store.items.push_back(item);
    } else if (!repeat || store.items.back().patient != item.patient ||
               store.items.back().z != item.z || store.items.back().rank != item.rank) {
      throw_bad_input(index_path.string(),
                      "line " + std::to_string(line) + ": rows out of order or inconsistent",
                      kStoreFix);
    }
  }
  if (store.items.empty())
    throw_bad_input(index_path.string(), "slice store has no items", kStoreFix);
  for (io::Sequence seq : io::kSequences)
    check_tensor_file(tensor_path(dir, seq), static_cast<int64_t>(store.items.size()), store.size);
  return store;
}

void read_slices(const SliceStore& store, io::Sequence seq, const std::vector<int64_t>& indices,
                 uint8_t* out) {
  const fs::path path = tensor_path(store.dir, seq);
  const int64_t row_bytes = int64_t(store.size) * store.size;
  const auto n = static_cast<int64_t>(store.items.size());
  internal::Fd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (f.fd < 0)
    throw_bad_input(path.string(), std::string("cannot open: ") + std::strerror(errno), kStoreFix);
  for (size_t k = 0; k < indices.size(); ++k) {
    const int64_t i = indices[k];
    if (i < 0 || i >= n)
      throw std::out_of_range("slice index " + std::to_string(i) + " outside 0.." +
                              std::to_string(n - 1));
    uint8_t* dst = out + int64_t(k) * row_bytes;
    int64_t done = 0;
    while (done < row_bytes) {
      const ssize_t got = ::pread(f.fd, dst + done, size_t(row_bytes - done),
                                  internal::kTensorHeaderBytes + i * row_bytes + done);
      if (got <= 0)
        throw_bad_input(path.string(), "cannot read row " + std::to_string(i) + " (truncated?)",
                        kStoreFix);
      done += got;
    }
  }
}

}  // namespace gg::prep
