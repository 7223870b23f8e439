// Helpers shared by the test suites: where ../shared is, where the built executable is, scratch
// directories that clean up after themselves, and running the CLI.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "common/error.h"
#include "testing/fixture_cache.h"  // cached_fixture(): fixtures shared across test processes

namespace gg::testing {

namespace fs = std::filesystem;

// ../shared beside the repository (GG_SHARED_DIR overrides). Tests that need a file in it, or a
// tool that scripts/install-deps.sh installs, call GG_MISSING when it is absent.
fs::path shared_dir();

// True under CI (the environment's CI is set and not "false" or "0", as CI services and .ci/run
// set it).
bool under_ci();
fs::path source_dir();
// The built gliomagrade executable (GG_EXE overrides).
fs::path exe_path();

// A fresh directory under the system temp dir, removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

// Caps the size of any file this process writes (RLIMIT_FSIZE) while it lives: a write past the
// cap fails with EFBIG, as a full disk fails with ENOSPC. SIGXFSZ is ignored meanwhile so the write
// returns the error instead of killing the process.
class FileSizeLimit {
 public:
  explicit FileSizeLimit(unsigned long bytes);
  ~FileSizeLimit();
  FileSizeLimit(const FileSizeLimit&) = delete;
  FileSizeLimit& operator=(const FileSizeLimit&) = delete;

 private:
  unsigned long old_soft_ = 0;
  void (*old_handler_)(int) = nullptr;
};

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};
// Runs `gliomagrade <args>` through /bin/sh (args are passed verbatim: quote as needed).
CommandResult run_cli(const std::string& args);
// The same, capturing stdout alone (stderr discarded): for output meant to be piped.
CommandResult run_cli_stdout(const std::string& args);

// Runs f() and expects a gg::Error of kind kBadInput whose file contains `file_part`, whose
// problem contains `what_part`, and which prints as one line (what the CLI shows the user).
template <typename F>
void expect_bad_input(F&& f, const std::string& file_part, const std::string& what_part) {
  try {
    f();
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kBadInput);
    EXPECT_NE(e.file().find(file_part), std::string::npos) << e.file();
    EXPECT_NE(e.problem().find(what_part), std::string::npos) << e.problem();
    EXPECT_EQ(format_error(e).find('\n'), std::string::npos) << format_error(e);
  }
}

}  // namespace gg::testing

// What a test needs is missing (a fixture in ../shared, python3, torchrun): outside CI the test is
// skipped with `message`; under CI, where everything is installed, it fails naming it, so that a
// CI without the fixtures cannot pass having tested little (issue 21). Returns from the test.
#define GG_MISSING(message)                                                   \
  do {                                                                        \
    if (::gg::testing::under_ci()) FAIL() << "missing under CI: " << message; \
    GTEST_SKIP() << message;                                                  \
  } while (0)
