// Internal helpers shared by eval/*.cpp; not part of the public API.
#pragma once

#include <vector>

namespace gg::eval::detail {

// Throws kBadInput unless labels and scores have the same size, labels are 0/1 and scores finite.
void check_labels_scores(const std::vector<int>& labels, const std::vector<double>& scores,
                         const char* what);

// x with Phi(x) = q for the standard normal distribution, q in (0, 1).
double normal_quantile(double q);

}  // namespace gg::eval::detail
