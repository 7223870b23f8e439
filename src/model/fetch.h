// Downloading the published ImageNet weights of the two GoogLeNet variants (libcurl), verified
// before they are kept. Internal to gg::model and the `weights fetch` command; no torch here.
//
// A download goes to a temporary file beside the destination, is checked (hash or size), and is
// renamed into place only when it passes: on any failure (unreachable host, HTTP error, wrong
// hash, disk full) nothing is left under the destination name or the temporary name.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace gg::model {

namespace fs = std::filesystem;

// Where the published files live. BVLC's SHA-1 is the one in BVLC/caffe
// models/bvlc_googlenet/readme.md; torchvision's check is the sha256 prefix in its file name.
inline constexpr const char* kBvlcWeightsUrl =
    "http://dl.caffe.berkeleyvision.org/bvlc_googlenet.caffemodel";
inline constexpr const char* kBvlcWeightsSha1 = "405fc5acd08a3bb12de8ee5e23a96bec22f08204";
inline constexpr const char* kTorchvisionWeightsUrl =
    "https://download.pytorch.org/models/googlenet-1378be20.pth";

// What a downloaded file must match. Every non-empty field is checked; all empty means unchecked.
struct ExpectedContent {
  std::string sha256_prefix;  // lower-case hex, 8..64 digits: the sha256 must start with it
  std::string sha1;           // lower-case hex, 40 digits
  int64_t size_bytes = -1;    // -1: any size
};

struct DownloadOptions {
  bool show_progress = true;    // a gg::Progress line on stderr (kB, rate, ETA)
  long connect_timeout_s = 20;  // giving up on a host that does not answer
  long stall_timeout_s = 60;    // giving up when less than 1 byte/s arrives for this long
};

// Downloads url (http, https or file; redirects followed) to dest, checking `expected`.
// Creates dest's parent directory; replaces dest if it exists (only once the download passed).
// Throws gg::Error: kRuntime for an unreachable host, an HTTP error status, a hash or size
// mismatch, or a write failure, each naming the URL or file and what to do.
void download_file(const std::string& url, const fs::path& dest, const ExpectedContent& expected,
                   const DownloadOptions& options = {});

// The hash prefix that torchvision/torch.hub read from a file name "name-<hex>.ext" (the hex run
// after the last '-', at least 8 digits), or "" when the name carries none.
std::string hash_prefix_from_name(const std::string& file_name);

struct FetchOptions {
  std::string url;         // empty: the variant's public URL (kBvlcWeightsUrl, ...)
  std::string sha256;      // non-empty (8..64 hex): check this sha256 (prefix) instead of
                           // the variant's published check, e.g. for a re-serialised mirror
  bool overwrite = false;  // replace a file already at the destination
  DownloadOptions download;
};

// Where fetch_weights puts the file of `which` (see below); url empty = the public one.
// Throws kBadInput for an unknown variant.
fs::path fetch_destination(const std::string& which, const fs::path& dest_dir,
                           const std::string& url = {});

// The check fetch_weights applies (see below). Throws kBadInput for a malformed sha256_override.
ExpectedContent fetch_expected_content(const std::string& which, const std::string& url,
                                       const std::string& sha256_override = {});

// Downloads the published weights of `which` ("bvlc" or "torchvision") into dest_dir and returns
// the file's path. File name: bvlc_googlenet.caffemodel for bvlc; for torchvision the URL's
// file name (googlenet-1378be20.pth by default), as torch.hub does. Checks: bvlc, the published
// SHA-1; torchvision, the sha256 prefix in the URL's file name (or 1378be20 when the URL's name
// has none). If the destination file already exists and passes the check it is returned without
// downloading; if it exists and fails, kBadInput unless options.overwrite.
// Throws gg::Error: kBadInput for an unknown variant or a malformed sha256 option, and whatever
// download_file throws.
fs::path fetch_weights(const std::string& which, const fs::path& dest_dir,
                       const FetchOptions& options = {});

// Checks a file on disk against `expected`; returns "" if it matches, else what differs
// ("sha256 3fa1... does not start with 1378be20"). Throws kBadInput if the file is unreadable.
std::string check_file_content(const fs::path& file, const ExpectedContent& expected);

}  // namespace gg::model
