#include "common/error.h"

namespace gg {

namespace {
std::string compose(const std::string& file, const std::string& what, const std::string& fix) {
  std::string s = file.empty() ? what : file + ": " + what;
  if (!fix.empty()) s += " (fix: " + fix + ")";
  return s;
}
}  // namespace

Error::Error(ExitCode code, std::string file, std::string what, std::string fix)
    : std::runtime_error(compose(file, what, fix)),
      code_(code),
      file_(std::move(file)),
      problem_(std::move(what)),
      fix_(std::move(fix)) {}

Error Error::with_context(const std::string& context) const {
  return Error(code_, file_, context + ": " + problem_, fix_);
}

void throw_bad_input(const std::string& file, const std::string& what, const std::string& fix) {
  throw Error(ExitCode::kBadInput, file, what, fix);
}

void throw_runtime(const std::string& file, const std::string& what, const std::string& fix) {
  throw Error(ExitCode::kRuntime, file, what, fix);
}

std::string format_error(const Error& e) { return e.what(); }

}  // namespace gg
