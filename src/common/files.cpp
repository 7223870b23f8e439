#include "common/files.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/file.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>

#include "common/error.h"

namespace gg {

std::string unique_suffix() {
  static std::atomic<unsigned> counter{0};
  static const unsigned salt = std::random_device{}();
  return std::to_string(::getpid()) + "-" + std::to_string(counter++) + "-" +
         std::to_string(salt % 100000);
}

FileLock::FileLock(const fs::path& path, Wait wait) {
  std::error_code ec;
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd_ < 0)
    throw_runtime(path.string(), "cannot create the lock file",
                  "check the directory exists and is writable");
  int rc;
  do rc = ::flock(fd_, LOCK_EX | (wait == Wait::kNo ? LOCK_NB : 0));
  while (rc != 0 && errno == EINTR);
  held_ = rc == 0;
}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // closing the descriptor releases the lock
}

void write_file_atomic(const fs::path& path, std::string_view bytes) {
  std::error_code ec;
  if (path.has_parent_path()) fs::create_directories(path.parent_path(), ec);
  const fs::path tmp = path.string() + ".tmp-" + unique_suffix();
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f)
    throw_runtime(path.string(), std::string("cannot create file (") + std::strerror(errno) + ")",
                  "check the directory exists and is writable");
  // A full disk or a file-size limit can surface at the write, the flush or the close.
  errno = 0;
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  ok = std::fflush(f) == 0 && ok;
  const int write_errno = errno;
  ok = std::fclose(f) == 0 && ok;
  if (!ok) {
    const int e = write_errno ? write_errno : errno;
    fs::remove(tmp, ec);
    throw_runtime(path.string(),
                  std::string("write failed (") + (e ? std::strerror(e) : "short write") + ")",
                  "check free disk space and file size limits");
  }
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw_runtime(path.string(), "cannot rename temporary file into place: " + ec.message());
  }
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_bad_input(path.string(), "cannot open file", "check the path and permissions");
  std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw_bad_input(path.string(), "read error");
  return s;
}

StagingDir::StagingDir(fs::path final_path, bool replace_existing) : final_(std::move(final_path)) {
  std::error_code ec;
  if (fs::exists(final_) && !replace_existing) {
    if (!fs::is_directory(final_) || !fs::is_empty(final_))
      throw_bad_input(final_.string(), "output directory already exists and is not empty",
                      "choose another --out or remove it");
  }
  tmp_ = final_.string() + ".partial-" + unique_suffix();
  fs::create_directories(tmp_, ec);
  if (ec) throw_runtime(tmp_.string(), "cannot create directory: " + ec.message());
}

StagingDir::~StagingDir() {
  if (!committed_) {
    std::error_code ec;
    fs::remove_all(tmp_, ec);
  }
}

void StagingDir::commit() {
  std::error_code ec;
  if (fs::exists(final_)) fs::remove_all(final_, ec);
  if (ec) throw_runtime(final_.string(), "cannot replace directory: " + ec.message());
  fs::rename(tmp_, final_, ec);
  if (ec) throw_runtime(final_.string(), "cannot move finished output into place: " + ec.message());
  committed_ = true;
}

void check_output_dir(const fs::path& dir, const std::string& marker) {
  std::error_code ec;
  if (!fs::exists(dir)) return;
  if (!fs::is_directory(dir))
    throw_bad_input(dir.string(), "exists and is not a directory", "choose another output path");
  if (fs::is_empty(dir)) return;
  if (!marker.empty() && fs::exists(dir / marker)) return;
  throw_bad_input(dir.string(), "output directory already holds other files",
                  "choose an empty or new directory, or remove it");
}

namespace {
std::string to_hex(const unsigned char* d, unsigned n) {
  static const char* k = "0123456789abcdef";
  std::string s(2 * n, '0');
  for (unsigned i = 0; i < n; ++i) {
    s[2 * i] = k[d[i] >> 4];
    s[2 * i + 1] = k[d[i] & 15];
  }
  return s;
}
struct MdCtx {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~MdCtx() { EVP_MD_CTX_free(ctx); }
};
}  // namespace

std::string sha256_hex(std::string_view bytes) {
  MdCtx c;
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_DigestInit_ex(c.ctx, EVP_sha256(), nullptr);
  EVP_DigestUpdate(c.ctx, bytes.data(), bytes.size());
  EVP_DigestFinal_ex(c.ctx, md, &n);
  return to_hex(md, n);
}

std::string sha256_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw_bad_input(path.string(), "cannot open file", "check the path and permissions");
  MdCtx c;
  EVP_DigestInit_ex(c.ctx, EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(c.ctx, buf.data(), static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) throw_bad_input(path.string(), "read error while hashing");
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_DigestFinal_ex(c.ctx, md, &n);
  return to_hex(md, n);
}

}  // namespace gg
