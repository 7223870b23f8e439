#include "testing/testing.h"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <random>

namespace gg::testing {

fs::path source_dir() { return GG_SOURCE_DIR; }

bool under_ci() {
  const char* ci = std::getenv("CI");
  if (!ci || !*ci) return false;
  const std::string v = ci;
  return v != "false" && v != "0";
}

fs::path shared_dir() {
  if (const char* e = std::getenv("GG_SHARED_DIR")) return e;
  return fs::weakly_canonical(source_dir() / ".." / "shared");
}

fs::path exe_path() {
  if (const char* e = std::getenv("GG_EXE")) return e;
  return GG_EXE_PATH;
}

TempDir::TempDir() {
  std::random_device rd;
  path_ = fs::temp_directory_path() /
          ("gg-test-" + std::to_string(::getpid()) + "-" + std::to_string(rd() % 1000000));
  fs::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

FileSizeLimit::FileSizeLimit(unsigned long bytes) {
  rlimit r{};
  ::getrlimit(RLIMIT_FSIZE, &r);
  old_soft_ = r.rlim_cur;
  old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
  r.rlim_cur = bytes;
  if (::setrlimit(RLIMIT_FSIZE, &r) != 0) ADD_FAILURE() << "setrlimit(RLIMIT_FSIZE) failed";
}

FileSizeLimit::~FileSizeLimit() {
  rlimit r{};
  ::getrlimit(RLIMIT_FSIZE, &r);
  r.rlim_cur = old_soft_;
  ::setrlimit(RLIMIT_FSIZE, &r);
  std::signal(SIGXFSZ, old_handler_);
}

namespace {
CommandResult run_shell(const std::string& cmd) {
  CommandResult r;
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int status = ::pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}
}  // namespace

namespace {
// Every command under coreutils' timeout (its process group: training children too), so that a
// command that hangs fails its test with the output so far instead of holding the suite.
constexpr int kCliTimeoutSeconds = 1100;

std::string cli_command(const std::string& args) {
  return "timeout -k 10 " + std::to_string(kCliTimeoutSeconds) + " '" + exe_path().string() + "' " +
         args;
}

CommandResult noting_timeout(CommandResult r) {
  if (r.exit_code == 124)
    r.output += "\n[test harness: the command was stopped after " +
                std::to_string(kCliTimeoutSeconds) + " s]\n";
  return r;
}
}  // namespace

CommandResult run_cli(const std::string& args) {
  return noting_timeout(run_shell(cli_command(args) + " 2>&1"));
}

CommandResult run_cli_stdout(const std::string& args) {
  return noting_timeout(run_shell(cli_command(args) + " 2>/dev/null"));
}

}  // namespace gg::testing
