// The cross-process fixture cache: built once, reused, nothing cached on failure, entries of other
// code removed, concurrent processes build once.
#include "testing/fixture_cache.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/files.h"
#include "testing/testing.h"

namespace gg::testing {
namespace {

// Points the cache at a fresh directory for one test.
class FixtureCacheTest : public ::testing::Test {
 protected:
  void SetUp() override { ::setenv("GG_TEST_CACHE_DIR", root_.path().c_str(), 1); }
  void TearDown() override { ::unsetenv("GG_TEST_CACHE_DIR"); }
  std::vector<std::string> names() const {
    std::vector<std::string> n;
    for (const auto& e : fs::directory_iterator(root_.path()))
      n.push_back(e.path().filename().string());
    std::sort(n.begin(), n.end());
    return n;
  }
  TempDir root_;
};

TEST_F(FixtureCacheTest, BuildsOnceThenReuses) {
  int builds = 0;
  auto build = [&](const fs::path& dir) {
    ++builds;
    write_file_atomic(dir / "data.txt", "built");
  };
  const fs::path a = cached_fixture("tiny", "p1", build);
  const fs::path b = cached_fixture("tiny", "p1", build);
  EXPECT_EQ(builds, 1);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.parent_path(), root_.path());
  EXPECT_EQ(read_file(a / "data.txt"), "built");
  // Other parameters: another entry, and the first one stays (same code).
  const fs::path c = cached_fixture("tiny", "p2", build);
  EXPECT_EQ(builds, 2);
  EXPECT_NE(c, a);
  EXPECT_TRUE(fs::exists(a / "data.txt"));
  // <name>-<16 hex of the executable's sha256>-<16 hex of the parameters' sha256>
  const std::string code = file_fingerprint("/proc/self/exe").substr(0, 16);
  EXPECT_EQ(a.filename().string(), "tiny-" + code + "-" + sha256_hex("p1").substr(0, 16));
}

TEST_F(FixtureCacheTest, FailedBuildLeavesNothingAndIsRetried) {
  EXPECT_THROW(cached_fixture("tiny", "p",
                              [](const fs::path& dir) {
                                write_file_atomic(dir / "half.txt", "x");
                                throw std::runtime_error("build failed");
                              }),
               std::runtime_error);
  EXPECT_EQ(names(), std::vector<std::string>{"tiny.lock"});
  const fs::path e = cached_fixture(
      "tiny", "p", [](const fs::path& dir) { write_file_atomic(dir / "ok.txt", "y"); });
  EXPECT_TRUE(fs::exists(e / "ok.txt"));
  EXPECT_FALSE(fs::exists(e / "half.txt"));
}

TEST_F(FixtureCacheTest, EntriesOfOtherCodeAndDeadStagingAreRemovedOnBuild) {
  TempDir elsewhere;
  const fs::path old_code = elsewhere / "old_code.bin";
  write_file_atomic(old_code, "an older build of the executable");
  auto build = [](const fs::path& dir) { write_file_atomic(dir / "f", "1"); };
  const fs::path old_entry = cached_fixture("tiny", "p", build, old_code);
  const fs::path other_name = cached_fixture("tiny_other", "p", build, old_code);
  fs::create_directories(root_ / ".build-tiny-0123-dead");  // a builder that was killed
  const fs::path current = cached_fixture("tiny", "p", build);
  EXPECT_NE(current, old_entry);
  EXPECT_FALSE(fs::exists(old_entry));
  EXPECT_FALSE(fs::exists(root_ / ".build-tiny-0123-dead"));
  EXPECT_TRUE(fs::exists(other_name)) << "another name's entries are not touched";
  EXPECT_EQ(names(), (std::vector<std::string>{current.filename().string(), "tiny.lock",
                                               other_name.filename().string(), "tiny_other.lock"}));
}

TEST_F(FixtureCacheTest, ConcurrentProcessesBuildOnce) {
  // Each child appends a line to builds.txt when it builds; the build is slow enough that the
  // children overlap, so the second one waits on the lock and then reuses the entry.
  const fs::path log = root_ / "builds.txt";
  std::vector<pid_t> children;
  for (int i = 0; i < 3; ++i) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      int code = 0;
      try {
        const fs::path e = cached_fixture("slow", "p", [&](const fs::path& dir) {
          FILE* f = std::fopen(log.c_str(), "a");
          std::fputs("built\n", f);
          std::fclose(f);
          std::this_thread::sleep_for(std::chrono::milliseconds(300));
          write_file_atomic(dir / "f", "1");
        });
        code = read_file(e / "f") == "1" ? 0 : 1;
      } catch (...) {
        code = 2;
      }
      std::_Exit(code);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  }
  EXPECT_EQ(read_file(log), "built\n");
}

TEST(FixtureCache, RejectsNamesThatCouldCollide) {
  auto build = [](const fs::path&) {};
  EXPECT_THROW(cached_fixture("a-b", "p", build), std::invalid_argument);
  EXPECT_THROW(cached_fixture("", "p", build), std::invalid_argument);
  EXPECT_THROW(cached_fixture("a/b", "p", build), std::invalid_argument);
}

TEST(FixtureCache, RootIsInTheBuildTree) {
  if (std::getenv("GG_TEST_CACHE_DIR")) GTEST_SKIP() << "GG_TEST_CACHE_DIR overrides the root";
  EXPECT_EQ(fixture_cache_root().filename(), "test-cache");
}

}  // namespace
}  // namespace gg::testing
