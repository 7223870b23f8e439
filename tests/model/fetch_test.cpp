// Downloads against a local HTTP server on 127.0.0.1 serving the shared fixture files: the file
// arrives byte-identical and verified, and every failure (wrong hash, 404, server gone, too many
// bytes) is a gg::Error that leaves no file behind.
#include <gtest/gtest.h>

#include "common/error.h"
#include "common/files.h"
#include "model/fetch.h"
#include "testing/local_http_server.h"
#include "testing/testing.h"

namespace gg::model {
namespace {

using gg::testing::LocalHttpServer;
using gg::testing::TempDir;

fs::path torchvision_fixture() {
  return gg::testing::shared_dir() / "fixtures/torchvision/googlenet-random-legacy.pth";
}
fs::path bvlc_weights() { return gg::testing::shared_dir() / "weights/bvlc_googlenet.caffemodel"; }

// Names of the entries in a directory (to prove nothing was left behind).
std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  if (!fs::exists(dir)) return names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  return names;
}

// Runs f, which must throw gg::Error; returns it.
template <class F>
gg::Error expect_error(F&& f) {
  try {
    f();
  } catch (const gg::Error& e) {
    return e;
  }
  ADD_FAILURE() << "no gg::Error thrown";
  return gg::Error(ExitCode::kOk, "", "");
}

// One server for the suite, serving links to the shared fixtures under the names tests ask for.
class FetchTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    served_ = new TempDir();
    if (!fs::exists(torchvision_fixture()) || !fs::exists(bvlc_weights())) return;
    fixture_sha256_ = new std::string(gg::sha256_file(torchvision_fixture()));
    // As torchvision names its files: googlenet-<first 8 hex of sha256>.pth.
    good_name_ = new std::string("googlenet-" + fixture_sha256_->substr(0, 8) + ".pth");
    fs::create_symlink(torchvision_fixture(), served_->path() / *good_name_);
    const std::string wrong = fixture_sha256_->front() == '0' ? "11111111" : "00000000";
    fs::create_symlink(torchvision_fixture(), served_->path() / ("googlenet-" + wrong + ".pth"));
    fs::create_symlink(bvlc_weights(), served_->path() / "bvlc_googlenet.caffemodel");
    server_ = new LocalHttpServer(served_->path());
  }
  static void TearDownTestSuite() {
    delete server_;
    delete served_;
    delete fixture_sha256_;
    delete good_name_;
    server_ = nullptr;
  }
  void SetUp() override {
    if (!fixture_sha256_) GG_MISSING("shared fixtures missing");
    if (LocalHttpServer::find_python3().empty()) GG_MISSING("python3 missing");
    ASSERT_TRUE(server_->running()) << server_->why_not();
  }
  static FetchOptions quiet(const std::string& url) {
    FetchOptions o;
    o.url = url;
    o.download.show_progress = false;
    return o;
  }

  static TempDir* served_;
  static LocalHttpServer* server_;
  static std::string* fixture_sha256_;
  static std::string* good_name_;
  TempDir out_;
};
TempDir* FetchTest::served_ = nullptr;
LocalHttpServer* FetchTest::server_ = nullptr;
std::string* FetchTest::fixture_sha256_ = nullptr;
std::string* FetchTest::good_name_ = nullptr;

TEST(HashPrefixFromName, ReadsTorchHubStyleNames) {
  EXPECT_EQ(hash_prefix_from_name("googlenet-1378be20.pth"), "1378be20");
  EXPECT_EQ(hash_prefix_from_name("resnet18-F37072FD.pth"), "f37072fd");
  EXPECT_EQ(hash_prefix_from_name("my-model-0123456789ab.pth"), "0123456789ab");
  EXPECT_EQ(hash_prefix_from_name("bvlc_googlenet.caffemodel"), "");
  EXPECT_EQ(hash_prefix_from_name("googlenet-1378be2.pth"), "");  // 7 digits: not a hash
  EXPECT_EQ(hash_prefix_from_name("googlenet-1378be20"), "");     // no extension
}

TEST(FetchDestination, NamesFilesAsPublished) {
  EXPECT_EQ(fetch_destination("bvlc", "w"), fs::path("w/bvlc_googlenet.caffemodel"));
  EXPECT_EQ(fetch_destination("torchvision", "w"), fs::path("w/googlenet-1378be20.pth"));
  EXPECT_EQ(fetch_destination("torchvision", "w", "http://h:1/a/googlenet-abcdef12.pth?x=1"),
            fs::path("w/googlenet-abcdef12.pth"));
  EXPECT_EQ(fetch_expected_content("torchvision", "").sha256_prefix, "1378be20");
  EXPECT_EQ(fetch_expected_content("torchvision", "http://h/plain.pth").sha256_prefix, "1378be20");
  EXPECT_EQ(fetch_expected_content("bvlc", "").sha1, "405fc5acd08a3bb12de8ee5e23a96bec22f08204");
  EXPECT_EQ(fetch_expected_content("bvlc", "", "ABCDEF0123").sha256_prefix, "abcdef0123");
  EXPECT_EQ(expect_error([] { fetch_destination("alexnet", "w"); }).code(), ExitCode::kBadInput);
  EXPECT_EQ(expect_error([] { fetch_expected_content("bvlc", "", "xyz12345"); }).code(),
            ExitCode::kBadInput);
}

TEST_F(FetchTest, TorchvisionFileArrivesByteIdenticalUnderItsHashedName) {
  const fs::path got = fetch_weights("torchvision", out_.path(), quiet(server_->url(*good_name_)));
  EXPECT_EQ(got, out_.path() / *good_name_);
  EXPECT_EQ(fs::file_size(got), fs::file_size(torchvision_fixture()));
  EXPECT_TRUE(gg::read_file(got) == gg::read_file(torchvision_fixture()));
  EXPECT_EQ(entries(out_.path()), std::vector<std::string>{*good_name_});  // no temporaries left

  // A second fetch finds the verified file and does not download: the server may be gone.
  EXPECT_EQ(fetch_weights("torchvision", out_.path(), quiet("http://127.0.0.1:1/" + *good_name_)),
            got);
}

TEST_F(FetchTest, WrongHashPrefixIsAnErrorAndLeavesNoFile) {
  const std::string wrong = fixture_sha256_->front() == '0' ? "11111111" : "00000000";
  const gg::Error e = expect_error([&] {
    fetch_weights("torchvision", out_.path(), quiet(server_->url("googlenet-" + wrong + ".pth")));
  });
  EXPECT_EQ(e.code(), ExitCode::kRuntime);
  EXPECT_NE(e.problem().find("does not start with " + wrong), std::string::npos) << e.what();
  EXPECT_TRUE(entries(out_.path()).empty());
}

TEST_F(FetchTest, BvlcMirrorIsCheckedAgainstThePublishedSha1) {
  // Our shared copy is re-serialised, so its SHA-1 differs from BVLC's published file.
  const std::string url = server_->url("bvlc_googlenet.caffemodel");
  const gg::Error e = expect_error([&] { fetch_weights("bvlc", out_.path(), quiet(url)); });
  EXPECT_NE(e.problem().find("expected 405fc5acd08a3bb12de8ee5e23a96bec22f08204"),
            std::string::npos)
      << e.what();
  EXPECT_TRUE(entries(out_.path()).empty());

  // With the mirror's own sha256 given, the same file is accepted.
  FetchOptions o = quiet(url);
  o.sha256 = gg::sha256_file(bvlc_weights());
  EXPECT_EQ(fetch_weights("bvlc", out_.path(), o), out_.path() / "bvlc_googlenet.caffemodel");
  EXPECT_EQ(gg::sha256_file(out_.path() / "bvlc_googlenet.caffemodel"), o.sha256);
}

TEST_F(FetchTest, ExistingFileThatDoesNotMatchIsKeptUnlessOverwrite) {
  gg::write_file_atomic(out_.path() / *good_name_, "not the weights");
  const gg::Error e = expect_error(
      [&] { fetch_weights("torchvision", out_.path(), quiet(server_->url(*good_name_))); });
  EXPECT_EQ(e.code(), ExitCode::kBadInput);
  EXPECT_EQ(gg::read_file(out_.path() / *good_name_), "not the weights");

  FetchOptions o = quiet(server_->url(*good_name_));
  o.overwrite = true;
  fetch_weights("torchvision", out_.path(), o);
  EXPECT_EQ(fs::file_size(out_.path() / *good_name_), fs::file_size(torchvision_fixture()));
}

TEST_F(FetchTest, Http404IsAnError) {
  const gg::Error e = expect_error([&] {
    fetch_weights("torchvision", out_.path(), quiet(server_->url("googlenet-12345678.pth")));
  });
  EXPECT_EQ(e.code(), ExitCode::kRuntime);
  EXPECT_NE(e.problem().find("HTTP status 404"), std::string::npos) << e.what();
  EXPECT_TRUE(entries(out_.path()).empty());
}

TEST_F(FetchTest, MoreBytesThanTheKnownSizeStopTheDownload) {
  ExpectedContent expected;
  expected.size_bytes = 1000;
  const gg::Error e = expect_error(
      [&] { download_file(server_->url(*good_name_), out_.path() / "w.pth", expected, {false}); });
  EXPECT_NE(e.problem().find("more than the expected 1000 bytes"), std::string::npos) << e.what();
  EXPECT_TRUE(entries(out_.path()).empty());

  expected.size_bytes = static_cast<int64_t>(fs::file_size(torchvision_fixture()));
  download_file(server_->url(*good_name_), out_.path() / "w.pth", expected, {false});
  EXPECT_EQ(gg::sha256_file(out_.path() / "w.pth"), *fixture_sha256_);
}

TEST_F(FetchTest, FileUrlCopiesALocalFile) {
  ExpectedContent expected;
  expected.sha256_prefix = fixture_sha256_->substr(0, 8);
  download_file("file://" + torchvision_fixture().string(), out_.path() / "copy.pth", expected,
                {false});
  EXPECT_EQ(gg::sha256_file(out_.path() / "copy.pth"), *fixture_sha256_);
}

TEST(FetchUnreachable, ServerGoneIsAClearError) {
  if (LocalHttpServer::find_python3().empty()) GG_MISSING("python3 missing");
  TempDir served, out;
  LocalHttpServer server(served.path());
  ASSERT_TRUE(server.running()) << server.why_not();
  const std::string url = server.url("googlenet-1378be20.pth");
  server.stop();
  FetchOptions o;
  o.url = url;
  o.download.show_progress = false;
  const gg::Error e = expect_error([&] { fetch_weights("torchvision", out.path(), o); });
  EXPECT_EQ(e.code(), ExitCode::kRuntime);
  EXPECT_NE(e.problem().find("cannot reach"), std::string::npos) << e.what();
  EXPECT_NE(
      e.fix().find("copy the file by hand to " + (out.path() / "googlenet-1378be20.pth").string()),
      std::string::npos)
      << e.fix();
  EXPECT_TRUE(entries(out.path()).empty());
}

}  // namespace
}  // namespace gg::model
