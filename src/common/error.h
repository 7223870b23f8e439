// gg::Error: the one exception type library code throws. It carries what a user needs to act:
// which file, what is wrong, and what to do. Only cli/main.cpp catches and prints it.
#pragma once

#include <stdexcept>
#include <string>

namespace gg {

// Process exit codes (cli/main.cpp maps errors to these).
enum class ExitCode : int {
  kOk = 0,
  kUnexpected = 1,  // a bug: an exception that is not a gg::Error
  kUsage = 2,       // bad command line
  kBadInput = 3,    // a file or option the user gave is wrong
  kRuntime = 4,     // the work itself failed (NaN loss, out of memory, disk full)
  kInterrupted = 130,
};

class Error : public std::runtime_error {
 public:
  // file may be empty when no file is involved; fix may be empty when there is nothing to suggest.
  Error(ExitCode code, std::string file, std::string what, std::string fix = {});

  ExitCode code() const { return code_; }
  const std::string& file() const { return file_; }
  const std::string& problem() const { return problem_; }
  const std::string& fix() const { return fix_; }

  // Returns a copy whose problem is prefixed with context ("reading cohort: ...").
  Error with_context(const std::string& context) const;

 private:
  ExitCode code_;
  std::string file_, problem_, fix_;
};

// Shorthands for the common cases.
[[noreturn]] void throw_bad_input(const std::string& file, const std::string& what,
                                  const std::string& fix = {});
[[noreturn]] void throw_runtime(const std::string& file, const std::string& what,
                                const std::string& fix = {});

// Formats an error the way the CLI prints it: "<file>: <what> (fix: <fix>)".
std::string format_error(const Error& e);

}  // namespace gg
