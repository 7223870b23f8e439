#include "common/files.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "common/progress.h"
#include "testing/testing.h"

namespace gg {
namespace {

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(WriteFileAtomic, WritesAndLeavesNoTemporaries) {
  testing::TempDir dir;
  write_file_atomic(dir / "a/b.txt", "hello");
  EXPECT_EQ(read_file(dir / "a/b.txt"), "hello");
  write_file_atomic(dir / "a/b.txt", "again");
  EXPECT_EQ(read_file(dir / "a/b.txt"), "again");
  int n = 0;
  for (auto& e : fs::directory_iterator(dir / "a")) (void)e, ++n;
  EXPECT_EQ(n, 1);
  EXPECT_EQ(sha256_file(dir / "a/b.txt"), sha256_hex("again"));
}

TEST(WriteFileAtomic, UnwritableDirectoryIsARuntimeError) {
  try {
    write_file_atomic("/proc/no-such-dir/x", "x");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kRuntime);
    EXPECT_EQ(e.file(), "/proc/no-such-dir/x");
  }
}

TEST(WriteFileAtomic, AFailedWriteSaysWhyAndLeavesNothing) {
  testing::TempDir dir;
  write_file_atomic(dir / "kept.bin", "old");
  {
    testing::FileSizeLimit cap(1000);  // fails like a full disk
    try {
      write_file_atomic(dir / "kept.bin", std::string(5000, 'x'));
      FAIL() << "expected an error";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ExitCode::kRuntime);
      EXPECT_EQ(e.file(), (dir / "kept.bin").string());
      EXPECT_NE(e.problem().find("write failed (File too large)"), std::string::npos)
          << e.problem();
    }
  }
  EXPECT_EQ(read_file(dir / "kept.bin"), "old");
  int n = 0;
  for (auto& e : fs::directory_iterator(dir.path())) (void)e, ++n;
  EXPECT_EQ(n, 1) << "the temporary file is removed";
}

TEST(StagingDir, RemovedWithoutCommit) {
  testing::TempDir dir;
  fs::path tmp;
  {
    StagingDir s(dir / "out");
    tmp = s.path();
    write_file_atomic(tmp / "x", "1");
    EXPECT_TRUE(fs::exists(tmp));
  }
  EXPECT_FALSE(fs::exists(tmp));
  EXPECT_FALSE(fs::exists(dir / "out"));
}

TEST(StagingDir, CommitMovesIntoPlace) {
  testing::TempDir dir;
  StagingDir s(dir / "out");
  write_file_atomic(s.path() / "x", "1");
  s.commit();
  EXPECT_EQ(read_file(dir / "out/x"), "1");
}

TEST(StagingDir, RefusesNonEmptyDirectory) {
  testing::TempDir dir;
  write_file_atomic(dir / "out/keep", "mine");
  EXPECT_THROW(StagingDir s(dir / "out"), Error);
  EXPECT_EQ(read_file(dir / "out/keep"), "mine");
}

TEST(CheckOutputDir, AcceptsOwnMarkerOnly) {
  testing::TempDir dir;
  EXPECT_NO_THROW(check_output_dir(dir / "new", "store.json"));
  write_file_atomic(dir / "ours/store.json", "{}");
  EXPECT_NO_THROW(check_output_dir(dir / "ours", "store.json"));
  write_file_atomic(dir / "theirs/thesis.docx", "x");
  EXPECT_THROW(check_output_dir(dir / "theirs", "store.json"), Error);
}

TEST(Error, MessageNamesFileProblemAndFix) {
  const Error e(ExitCode::kBadInput, "a.nii", "not 3-D", "give a 3-D volume");
  EXPECT_EQ(format_error(e), "a.nii: not 3-D (fix: give a 3-D volume)");
  EXPECT_EQ(format_error(e.with_context("reading cohort")),
            "a.nii: reading cohort: not 3-D (fix: give a 3-D volume)");
}

TEST(FormatDuration, MinutesAndHours) {
  EXPECT_EQ(format_duration(5), "0:05");
  EXPECT_EQ(format_duration(125), "2:05");
  EXPECT_EQ(format_duration(3725), "1:02:05");
}

TEST(FileLock, ASecondHolderIsRefusedUntilTheFirstReleases) {
  testing::TempDir dir;
  const fs::path lock = dir / "sub/task.lock";
  {
    FileLock first(lock, FileLock::Wait::kNo);
    ASSERT_TRUE(first.held());
    EXPECT_TRUE(fs::exists(lock));
    FileLock second(lock, FileLock::Wait::kNo);
    EXPECT_FALSE(second.held()) << "flock is per open file: a second holder conflicts";
  }
  FileLock again(lock, FileLock::Wait::kNo);
  EXPECT_TRUE(again.held()) << "released when the first holder went";
}

TEST(FileLock, UncreatableLockFileIsARuntimeError) {
  try {
    FileLock lock("/proc/no-such-dir/x.lock", FileLock::Wait::kNo);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ExitCode::kRuntime);
    EXPECT_EQ(e.file(), "/proc/no-such-dir/x.lock");
  }
}

}  // namespace
}  // namespace gg
