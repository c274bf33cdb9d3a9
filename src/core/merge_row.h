#pragma once
// The numerics of one merged row, shared by the CPU backend and the CUDA merge kernel so that both
// follow one rule (include/openmla/merge.h): parts with an infinite LSE contribute nothing, NaN wins.

#include <math.h>

#include <cstdint>

#include "host_device.h"

namespace openmla::lse_merge {

// IEEE identities, the same on host and device: x - x is 0 for finite x and NaN for inf and NaN.
OPENMLA_HD bool is_nan(float x) { return x != x; }
OPENMLA_HD bool contributes(float part_lse) { return part_lse - part_lse == 0.0f; }

// The union's LSE from the n parts' LSEs lse[k * stride]: NaN when any is NaN; +inf when no part
// contributes; otherwise log(sum_k exp(l_k)) over the finite l_k, shifted by their max so that no
// exp overflows.
OPENMLA_HD float union_lse(const float* lse, int64_t stride, int64_t n) {
  float max_lse = -INFINITY;
  bool any = false;
  for (int64_t k = 0; k < n; ++k) {
    const float l = lse[k * stride];
    if (is_nan(l)) {
      return NAN;
    }
    if (contributes(l)) {
      max_lse = any ? fmaxf(max_lse, l) : l;
      any = true;
    }
  }
  if (!any) {
    return INFINITY;
  }
  float sum = 0.0f;
  for (int64_t k = 0; k < n; ++k) {
    const float l = lse[k * stride];
    if (contributes(l)) {
      sum += expf(l - max_lse);
    }
  }
  return max_lse + logf(sum);
}

// The weight of a contributing part (finite part_lse) in a row whose union LSE is finite.
OPENMLA_HD float part_weight(float part_lse, float lse) { return expf(part_lse - lse); }

}  // namespace openmla::lse_merge
