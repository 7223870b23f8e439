#include "testing/fixture_cache.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <stdexcept>
#include <system_error>

#include "common/files.h"

namespace gg::testing {

namespace {

constexpr size_t kKeyChars = 16;  // hex characters of each half of an entry's key

std::recursive_mutex& cache_mutex() {
  static std::recursive_mutex m;
  return m;
}

bool is_hex(const std::string& s) {
  return s.find_first_not_of("0123456789abcdef") == std::string::npos;
}

void check_name(const std::string& name) {
  if (name.empty() || name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                             "0123456789_") != std::string::npos)
    throw std::invalid_argument("cached_fixture: name '" + name +
                                "' must be letters, digits and '_' only");
}

// One open lock file per fixture name for the life of the process: flock locks belong to the
// open file, so converting between shared and exclusive on the same descriptor never deadlocks
// the process against itself.
class NameLock {
 public:
  NameLock(const fs::path& file) : file_(file) {
    fd_ = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) fail("open");
  }
  void exclusive() { lock(LOCK_EX, "lock (exclusive)"); }
  void shared() { lock(LOCK_SH, "lock (shared)"); }
  void unlock() { lock(LOCK_UN, "unlock"); }
  bool in_use = false;  // an entry of this name was handed out: keep at least a shared lock

 private:
  void lock(int operation, const char* what) {
    while (::flock(fd_, operation) != 0)
      if (errno != EINTR) fail(what);
  }
  [[noreturn]] void fail(const char* what) const {
    throw std::system_error(errno, std::generic_category(),
                            std::string("cached_fixture: cannot ") + what + " " + file_.string());
  }
  fs::path file_;
  int fd_ = -1;
};

NameLock& name_lock(const fs::path& root, const std::string& name) {
  static std::map<std::string, NameLock> locks;
  const fs::path file = root / (name + ".lock");
  auto it = locks.find(file.string());
  if (it == locks.end()) it = locks.emplace(file.string(), NameLock(file)).first;
  return it->second;
}

// Called holding the exclusive lock: staging directories of `name` left by builders that died
// (they held this lock too), and entries of `name` built by other code (another `code` key).
void remove_stale(const fs::path& root, const std::string& name, const std::string& code_key) {
  const std::string staging_prefix = ".build-" + name + "-";
  const std::string entry_prefix = name + "-";
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec)) {
    const std::string f = e.path().filename().string();
    bool stale = f.rfind(staging_prefix, 0) == 0;
    // <name>-<16 hex code>-<16 hex params>
    if (!stale && f.size() == entry_prefix.size() + 2 * kKeyChars + 1 &&
        f.rfind(entry_prefix, 0) == 0 && f[entry_prefix.size() + kKeyChars] == '-') {
      const std::string code = f.substr(entry_prefix.size(), kKeyChars);
      const std::string params = f.substr(entry_prefix.size() + kKeyChars + 1);
      stale = is_hex(code) && is_hex(params) && code != code_key;
    }
    if (stale) fs::remove_all(e.path(), ec);
  }
}

}  // namespace

fs::path fixture_cache_root() {
  if (const char* e = std::getenv("GG_TEST_CACHE_DIR"); e && *e) return e;
  return GG_TEST_CACHE_DIR;
}

std::string file_fingerprint(const fs::path& file) {
  std::lock_guard<std::recursive_mutex> hold(cache_mutex());
  static std::map<std::string, std::string> memo;
  auto it = memo.find(file.string());
  if (it == memo.end()) it = memo.emplace(file.string(), sha256_file(file)).first;
  return it->second;
}

std::string optional_file_fingerprint(const fs::path& file) {
  return fs::exists(file) ? file_fingerprint(file) : "absent";
}

fs::path cached_fixture(const std::string& name, const std::string& params,
                        const std::function<void(const fs::path& dir)>& build,
                        const fs::path& code) {
  check_name(name);
  std::lock_guard<std::recursive_mutex> hold(cache_mutex());
  const fs::path root = fixture_cache_root();
  fs::create_directories(root);
  const std::string code_key = file_fingerprint(code).substr(0, kKeyChars);
  const std::string entry_name =
      name + "-" + code_key + "-" + sha256_hex(params).substr(0, kKeyChars);
  const fs::path entry = root / entry_name;
  NameLock& lock = name_lock(root, name);

  // An entry appears whole (renamed into place) or not at all, so seeing it is enough; the shared
  // lock then keeps other code's builders from deleting it while this process uses it.
  if (fs::is_directory(entry)) {
    lock.shared();
    if (fs::is_directory(entry)) {
      lock.in_use = true;
      return entry;
    }
  }
  lock.exclusive();
  if (!fs::is_directory(entry)) {
    remove_stale(root, name, code_key);
    const fs::path staging = root / (".build-" + entry_name + "-" + unique_suffix());
    fs::create_directories(staging);
    try {
      build(staging);
      fs::rename(staging, entry);
    } catch (...) {
      std::error_code ec;
      fs::remove_all(staging, ec);
      if (lock.in_use)
        lock.shared();
      else
        lock.unlock();
      throw;
    }
  }
  lock.shared();
  lock.in_use = true;
  return entry;
}

}  // namespace gg::testing
