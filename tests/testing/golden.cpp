#include "testing/golden.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "common/files.h"
#include "testing/testing.h"

namespace gg::testing {

void expect_golden(const std::filesystem::path& actual_json, const std::string& golden_name,
                   double tolerance) {
  const fs::path golden = source_dir() / "tests" / "golden" / golden_name;
  const auto actual = nlohmann::json::parse(read_file(actual_json));
  auto expected = nlohmann::json::parse(read_file(golden));
  const char* update = std::getenv("GG_UPDATE_GOLDEN");
  if (update && std::string(update) == "1") {
    for (auto& [pointer, value] : expected.items())
      value = actual.value(nlohmann::json::json_pointer(pointer), nlohmann::json());
    write_file_atomic(golden, expected.dump(2) + "\n");
    std::printf("  updated %s\n", golden.c_str());
    return;
  }
  for (const auto& [pointer, want] : expected.items()) {
    const nlohmann::json::json_pointer ptr(pointer);
    ASSERT_TRUE(actual.contains(ptr)) << golden_name << ": " << pointer << " missing";
    const auto& got = actual.at(ptr);
    if (want.is_number() && got.is_number()) {
      EXPECT_NEAR(got.get<double>(), want.get<double>(), tolerance)
          << golden_name << ": " << pointer;
    } else {
      EXPECT_EQ(got, want) << golden_name << ": " << pointer;
    }
    std::printf("  %-60s %s (golden %s)\n", pointer.c_str(), got.dump().c_str(),
                want.dump().c_str());
  }
}

}  // namespace gg::testing
