// GG_MISSING: a missing fixture skips a test outside CI and fails it under CI=true, naming it.
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "testing/testing.h"

namespace gg::testing {
namespace {

// Sets CI for the scope, restoring it after.
class CiVariable {
 public:
  explicit CiVariable(const char* value) {
    if (const char* old = std::getenv("CI")) old_ = old, had_ = true;
    if (value)
      ::setenv("CI", value, 1);
    else
      ::unsetenv("CI");
  }
  ~CiVariable() {
    if (had_)
      ::setenv("CI", old_.c_str(), 1);
    else
      ::unsetenv("CI");
  }

 private:
  std::string old_;
  bool had_ = false;
};

TEST(UnderCi, ReadsTheCiVariableAsCiServicesSetIt) {
  {
    CiVariable ci("true");
    EXPECT_TRUE(under_ci());
  }
  {
    CiVariable ci("1");
    EXPECT_TRUE(under_ci());
  }
  for (const char* off : {"false", "0", ""}) {
    CiVariable ci(off);
    EXPECT_FALSE(under_ci()) << off;
  }
  CiVariable unset(nullptr);
  EXPECT_FALSE(under_ci());
}

void needs_a_missing_fixture() { GG_MISSING("no /nonexistent/fixture.nii.gz"); }

TEST(GgMissing, FailsNamingWhatItLookedForUnderCi) {
  CiVariable ci("true");
  EXPECT_FATAL_FAILURE(needs_a_missing_fixture(),
                       "missing under CI: no /nonexistent/fixture.nii.gz");
}

}  // namespace
}  // namespace gg::testing
