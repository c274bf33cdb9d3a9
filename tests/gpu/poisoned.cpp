#include "poisoned.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "reference_gpu.h"

namespace openmla::test {

void expect_poisoned(const Problem& problem, const DeviceProblem& device, const Output& output,
                     const std::vector<int64_t>& bad) {
  const ProblemSpec& s = problem.spec;
  const Reference ref = gpu_reference(problem, device);
  const Reference got = reference_from_output(output.out_view(), output.lse_view());
  const int64_t per_seq = s.s_q * s.h_q * s.d_v;
  for (int64_t n = 0; n < s.b; ++n) {
    const bool is_bad = std::find(bad.begin(), bad.end(), n) != bad.end();
    for (int64_t e = 0; e < per_seq; ++e) {
      const size_t at = static_cast<size_t>(n * per_seq + e);
      if (is_bad) {
        ASSERT_TRUE(std::isnan(got.out[at])) << "sequence " << n << " element " << e;
      } else {
        ASSERT_LE(std::abs(got.out[at] - ref.out[at]), 1e-3 + std::abs(ref.out[at]) / 64)
            << "sequence " << n << " element " << e;
      }
    }
    for (int64_t r = 0; r < s.h_q * s.s_q; ++r) {
      const size_t at = static_cast<size_t>(n * s.h_q * s.s_q + r);
      EXPECT_EQ(std::isnan(got.lse[at]), is_bad) << "sequence " << n << " lse " << r;
    }
  }
}

}  // namespace openmla::test
