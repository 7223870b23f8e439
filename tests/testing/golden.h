// Golden values: a checked-in JSON file {"<JSON pointer>": expected value, ...} compared with a
// results file (metrics.json, audit.json) within a tolerance. Training is deterministic, so
// these catch any change of the numbers, not only of the files' shape.
// GG_UPDATE_GOLDEN=1 rewrites the expected values of the same pointers from the actual file
// (after a deliberate change of the numbers; review the diff).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

namespace gg::testing {

// Adds a gtest failure for each pointer whose actual value differs (numbers beyond `tolerance`
// absolute, null where a number is expected or the reverse, other values unequal) or is absent.
// golden_name: file name under tests/golden/.
void expect_golden(const std::filesystem::path& actual_json, const std::string& golden_name,
                   double tolerance);

}  // namespace gg::testing
