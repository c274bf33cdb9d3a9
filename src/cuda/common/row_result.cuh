#pragma once
// How a decode kernel finishes one query row from its online-softmax state.

#include <cmath>

namespace openmla::cuda {

struct RowResult {
  float inv;  // multiplies the row's accumulated output
  float lse;  // natural-log log-sum-exp of the row's scaled scores
};

// A row with running max `max_log2` (log2 domain) and sum `sum` of exp2(score - max): out = acc / sum,
// lse = max ln 2 + ln(sum). A row that saw no key (sum 0): out 0 and lse +inf for a final result,
// -inf for a split's partial (the combine skips it). A sequence with bad device values: NaN.
__device__ __forceinline__ RowResult row_result(bool bad, bool partial, float max_log2, float sum) {
  if (bad) {
    return RowResult{NAN, NAN};
  }
  if (sum == 0.f) {
    return RowResult{0.f, partial ? -INFINITY : INFINITY};
  }
  return RowResult{1.f / sum, max_log2 * 0.69314718055994531f + logf(sum)};
}

}  // namespace openmla::cuda
