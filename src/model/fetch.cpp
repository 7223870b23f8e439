#include "model/fetch.h"

#include <curl/curl.h>
#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <vector>

#include "common/error.h"
#include "common/files.h"
#include "common/progress.h"

namespace gg::model {

namespace {

// Two running digests (sha256 and sha1) over the same stream of bytes.
class StreamHasher {
 public:
  StreamHasher()
      : sha256_(EVP_MD_CTX_new(), &EVP_MD_CTX_free), sha1_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {
    if (!sha256_ || !sha1_ || EVP_DigestInit_ex(sha256_.get(), EVP_sha256(), nullptr) != 1 ||
        EVP_DigestInit_ex(sha1_.get(), EVP_sha1(), nullptr) != 1) {
      throw_runtime("", "OpenSSL digest initialisation failed");
    }
  }
  void update(const void* data, size_t n) {
    EVP_DigestUpdate(sha256_.get(), data, n);
    EVP_DigestUpdate(sha1_.get(), data, n);
  }
  // Finishes both digests (call once).
  void finish(std::string* sha256_hex_out, std::string* sha1_hex_out) {
    *sha256_hex_out = final_hex(sha256_.get());
    *sha1_hex_out = final_hex(sha1_.get());
  }

 private:
  static std::string final_hex(EVP_MD_CTX* ctx) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx, digest, &len);
    std::string hex;
    for (unsigned i = 0; i < len; ++i) hex += fmt::format("{:02x}", digest[i]);
    return hex;
  }
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> sha256_, sha1_;
};

struct FileDigest {
  std::string sha256, sha1;
  int64_t size_bytes = 0;
};

// Compares a finished digest with what was expected; "" when it matches.
std::string mismatch(const FileDigest& got, const ExpectedContent& expected) {
  if (expected.size_bytes >= 0 && got.size_bytes != expected.size_bytes)
    return fmt::format("size {} bytes, expected {}", got.size_bytes, expected.size_bytes);
  if (!expected.sha256_prefix.empty() && got.sha256.rfind(expected.sha256_prefix, 0) != 0)
    return fmt::format("sha256 {} does not start with {}", got.sha256, expected.sha256_prefix);
  if (!expected.sha1.empty() && got.sha1 != expected.sha1)
    return fmt::format("sha1 {}, expected {}", got.sha1, expected.sha1);
  return {};
}

bool is_hex(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
}

std::string to_lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The last path segment of a URL, without query or fragment.
std::string url_file_name(const std::string& url) {
  std::string path = url.substr(0, url.find_first_of("?#"));
  const size_t scheme = path.find("://");
  if (scheme != std::string::npos) {
    const size_t slash = path.find('/', scheme + 3);
    path = slash == std::string::npos ? std::string() : path.substr(slash);
  }
  const size_t last = path.find_last_of('/');
  return last == std::string::npos ? path : path.substr(last + 1);
}

// State shared with libcurl's callbacks during one transfer.
struct Transfer {
  std::FILE* out = nullptr;
  StreamHasher hasher;
  int64_t received = 0;
  int64_t size_limit = -1;   // abort once more than this arrives (a known size)
  std::string abort_reason;  // set by the write callback when it stops the transfer
  bool show_progress = true;
  std::string label;
  std::optional<Progress> progress;
  int64_t reported_kb = 0;
};

size_t on_data(char* data, size_t size, size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * count;
  t->received += static_cast<int64_t>(n);
  if (t->size_limit >= 0 && t->received > t->size_limit) {
    t->abort_reason = fmt::format("server sent more than the expected {} bytes", t->size_limit);
    return 0;  // makes libcurl stop with CURLE_WRITE_ERROR
  }
  if (std::fwrite(data, 1, n, t->out) != n) {
    t->abort_reason = "cannot write the download to disk (disk full?)";
    return 0;
  }
  t->hasher.update(data, n);
  return n;
}

int on_progress(void* user, curl_off_t total, curl_off_t now, curl_off_t, curl_off_t) {
  auto* t = static_cast<Transfer*>(user);
  if (!t->show_progress || now <= 0) return 0;
  if (!t->progress) t->progress.emplace(t->label, total > 0 ? total / 1024 : 0, "kB");
  const int64_t kb = now / 1024;
  if (kb > t->reported_kb) {
    t->progress->tick(kb - t->reported_kb);
    t->reported_kb = kb;
  }
  return 0;
}

// Removes the temporary download unless it was renamed into place.
struct TempFileGuard {
  fs::path path;
  std::FILE* file = nullptr;
  bool keep = false;
  ~TempFileGuard() {
    if (file) std::fclose(file);
    if (!keep) {
      std::error_code ec;
      fs::remove(path, ec);
    }
  }
};

[[noreturn]] void throw_transfer_error(CURL* curl, CURLcode code, const std::string& url,
                                       const fs::path& dest, const Transfer& t,
                                       const char* curl_message) {
  const std::string by_hand =
      fmt::format("copy the file by hand to {} or pass --url", dest.string());
  switch (code) {
    case CURLE_HTTP_RETURNED_ERROR: {
      long status = 0;
      curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
      throw_runtime(url, fmt::format("download failed: HTTP status {}", status),
                    status == 404 ? "check the URL; " + by_hand : by_hand);
    }
    case CURLE_WRITE_ERROR:
      if (!t.abort_reason.empty())
        throw_runtime(dest.string(), t.abort_reason, "check the URL and free disk space");
      break;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      throw_bad_input(url, fmt::format("not a usable URL ({})", curl_message),
                      "pass an http://, https:// or file:// URL");
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SSL_CONNECT_ERROR:
      throw_runtime(url, fmt::format("cannot reach the server ({})", curl_message), by_hand);
    case CURLE_FILE_COULDNT_READ_FILE:
      throw_bad_input(url, fmt::format("cannot read ({})", curl_message), "check the path");
    default:
      break;
  }
  throw_runtime(url, fmt::format("download failed after {} bytes ({})", t.received, curl_message),
                by_hand);
}

}  // namespace

std::string hash_prefix_from_name(const std::string& file_name) {
  // torch.hub: the first "-<hex>." in the name.
  for (size_t dash = file_name.find('-'); dash != std::string::npos;
       dash = file_name.find('-', dash + 1)) {
    size_t end = dash + 1;
    while (end < file_name.size() && std::isxdigit(static_cast<unsigned char>(file_name[end])))
      ++end;
    if (end < file_name.size() && file_name[end] == '.' && end - dash - 1 >= 8)
      return to_lower(file_name.substr(dash + 1, end - dash - 1));
  }
  return {};
}

std::string check_file_content(const fs::path& file, const ExpectedContent& expected) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw_bad_input(file.string(), "cannot open file", "check the path and permissions");
  StreamHasher hasher;
  FileDigest got;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto n = in.gcount();
    hasher.update(buf.data(), static_cast<size_t>(n));
    got.size_bytes += n;
  }
  if (in.bad()) throw_bad_input(file.string(), "read error");
  hasher.finish(&got.sha256, &got.sha1);
  return mismatch(got, expected);
}

void download_file(const std::string& url, const fs::path& dest, const ExpectedContent& expected,
                   const DownloadOptions& options) {
  std::error_code ec;
  if (dest.has_parent_path()) fs::create_directories(dest.parent_path(), ec);
  if (ec) throw_runtime(dest.parent_path().string(), "cannot create directory: " + ec.message());

  TempFileGuard tmp{dest.string() + ".download-" + unique_suffix()};
  tmp.file = std::fopen(tmp.path.c_str(), "wb");
  if (!tmp.file)
    throw_runtime(dest.string(), "cannot create file", "check the directory is writable");

  Transfer t;
  t.out = tmp.file;
  t.size_limit = expected.size_bytes;
  t.show_progress = options.show_progress;
  t.label = "downloading " + dest.filename().string();

  std::unique_ptr<CURL, void (*)(CURL*)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) throw_runtime(url, "libcurl initialisation failed");
  char curl_message[CURL_ERROR_SIZE] = {};
  CURL* c = curl.get();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_message);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https,file");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");  // never redirect to file://
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);  // HTTP >= 400 is an error, not a body to keep
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, options.connect_timeout_s);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, options.stall_timeout_s);
  curl_easy_setopt(c, CURLOPT_USERAGENT, "gliomagrade (libcurl)");
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &on_data);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);

  const CURLcode code = curl_easy_perform(c);
  if (code != CURLE_OK) {
    const std::string message = curl_message[0] ? curl_message : curl_easy_strerror(code);
    throw_transfer_error(c, code, url, dest, t, message.c_str());
  }
  if (t.progress) t.progress->done();

  const bool flushed = std::fflush(tmp.file) == 0;
  const bool closed = std::fclose(tmp.file) == 0;
  tmp.file = nullptr;
  if (!flushed || !closed)
    throw_runtime(dest.string(), "cannot write the download to disk", "check free disk space");

  FileDigest got;
  got.size_bytes = t.received;
  t.hasher.finish(&got.sha256, &got.sha1);
  const std::string wrong = mismatch(got, expected);
  if (!wrong.empty()) {
    throw_runtime(url, "downloaded file does not match: " + wrong,
                  "the download is corrupt or the server sends another file; retry, or copy the "
                  "published file by hand to " +
                      dest.string());
  }
  fs::rename(tmp.path, dest, ec);
  if (ec) throw_runtime(dest.string(), "cannot move the download into place: " + ec.message());
  tmp.keep = true;
}

fs::path fetch_destination(const std::string& which, const fs::path& dest_dir,
                           const std::string& url) {
  if (which == "bvlc") return dest_dir / "bvlc_googlenet.caffemodel";
  if (which == "torchvision") {
    const std::string name = url_file_name(url.empty() ? kTorchvisionWeightsUrl : url);
    return dest_dir / (name.empty() ? url_file_name(kTorchvisionWeightsUrl) : name);
  }
  throw_bad_input("", fmt::format("unknown GoogLeNet variant '{}'", which),
                  "use bvlc or torchvision");
}

ExpectedContent fetch_expected_content(const std::string& which, const std::string& url,
                                       const std::string& sha256_override) {
  ExpectedContent expected;
  if (!sha256_override.empty()) {
    const std::string hex = to_lower(sha256_override);
    if (hex.size() < 8 || hex.size() > 64 || !is_hex(hex))
      throw_bad_input("", fmt::format("--sha256 '{}' is not 8 to 64 hex digits", sha256_override),
                      "pass the file's sha256 (or its first 8+ hex digits)");
    expected.sha256_prefix = hex;
    return expected;
  }
  if (which == "bvlc") {
    expected.sha1 = kBvlcWeightsSha1;
  } else {
    const std::string from_name =
        hash_prefix_from_name(fetch_destination(which, "", url).filename());
    expected.sha256_prefix = from_name.empty()
                                 ? hash_prefix_from_name(url_file_name(kTorchvisionWeightsUrl))
                                 : from_name;
  }
  return expected;
}

fs::path fetch_weights(const std::string& which, const fs::path& dest_dir,
                       const FetchOptions& options) {
  const fs::path dest = fetch_destination(which, dest_dir, options.url);
  const ExpectedContent expected = fetch_expected_content(which, options.url, options.sha256);
  if (fs::exists(dest) && !options.overwrite) {
    const std::string wrong = check_file_content(dest, expected);
    if (wrong.empty()) return dest;  // already there and verified
    throw_bad_input(dest.string(), "a file is already there and does not match: " + wrong,
                    "remove it, or pass --overwrite to replace it");
  }
  const std::string url = options.url.empty()
                              ? (which == "bvlc" ? kBvlcWeightsUrl : kTorchvisionWeightsUrl)
                              : options.url;
  download_file(url, dest, expected, options.download);
  return dest;
}

}  // namespace gg::model
