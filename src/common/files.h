// Files: atomic writes, staged output directories, hashing. Nothing is ever half-written: a
// file appears complete under its final name or not at all.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace gg {

namespace fs = std::filesystem;

// Writes bytes to path via a temporary file in the same directory and a rename. Creates the
// parent directory. Throws gg::Error (kRuntime) naming the path on any failure; the temporary is
// removed.
void write_file_atomic(const fs::path& path, std::string_view bytes);

// Reads a whole file. Throws gg::Error (kBadInput) naming the path if it cannot be read.
std::string read_file(const fs::path& path);

// A directory that is built under a temporary name beside its final path and renamed into place
// by commit(). If the object is destroyed without commit() (an exception, an interrupt), the
// temporary directory is removed, so a failed run leaves nothing behind.
// If `final_path` exists and replace_existing is false, the constructor throws kBadInput unless
// it is empty.
class StagingDir {
 public:
  explicit StagingDir(fs::path final_path, bool replace_existing = false);
  ~StagingDir();
  StagingDir(const StagingDir&) = delete;
  StagingDir& operator=(const StagingDir&) = delete;

  const fs::path& path() const { return tmp_; }  // write here
  const fs::path& final_path() const { return final_; }
  void commit();  // rename into place

 private:
  fs::path final_, tmp_;
  bool committed_ = false;
};

// Checks that dir can receive a run's outputs: absent, empty, or (when `marker` is non-empty)
// holding `marker`, i.e. written by us before. Otherwise throws kBadInput naming dir.
void check_output_dir(const fs::path& dir, const std::string& marker);

// An advisory lock (flock) on `path`, created if absent, held until destruction: it keeps
// processes that share a results directory (run --jobs, separately started --task trainings)
// from preparing the same store or training the same model at once. Released by the kernel when
// the process dies, so a killed process never leaves a stale lock. Locks are per open file:
// two FileLocks on one path conflict in one process too.
class FileLock {
 public:
  enum class Wait { kNo, kYes };
  // kNo: held() tells whether the lock was free; kYes: blocks until it is. Throws kRuntime
  // naming the path if the lock file cannot be created.
  FileLock(const fs::path& path, Wait wait);
  ~FileLock();
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  bool held() const { return held_; }

 private:
  int fd_ = -1;
  bool held_ = false;
};

// SHA-256 as lower-case hex.
std::string sha256_hex(std::string_view bytes);
std::string sha256_file(const fs::path& path);  // streams; throws kBadInput if unreadable

// A short unique suffix for temporaries (pid + counter + random).
std::string unique_suffix();

}  // namespace gg
