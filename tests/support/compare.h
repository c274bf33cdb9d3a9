#pragma once
// A decode result against the float64 reference, with the tolerances of docs/design.md. No GoogleTest here:
// check.h turns a Comparison into test failures.

#include <cstdint>
#include <string>
#include <vector>

#include "openmla/tensor.h"
#include "reference.h"

namespace openmla::test {

// docs/design.md (Tolerances), for bf16 inputs of N(0, 0.1²) scale. fp16 inputs carry 3 more mantissa bits, so the
// same bounds hold for them with room to spare.
struct Tolerance {
  double out_abs = 1e-3;  // every element: |out - ref| <= out_abs + |ref| * out_rel
  double out_rel = 1.0 / 64;
  double frobenius = 5e-3;  // ||out - ref||_F / ||ref||_F
  double lse_abs = 1e-5;    // every row: |lse - ref| <= lse_abs + |ref| * lse_rel
  double lse_rel = 2e-4;
};

struct Comparison {
  int64_t out_mismatches = 0;  // elements outside the per-element bound (NaN included)
  int64_t lse_mismatches = 0;  // rows outside the lse bound or with +inf where the reference is finite
  int64_t nans = 0;            // NaN in out or lse
  double max_out_error = 0.0;
  double rel_frobenius = 0.0;
  std::vector<std::string> first;  // the first few offences, with their indices

  bool ok(const Tolerance& tol = {}) const;
  std::string summary() const;
};

// out: host view [b, s_q, h_q, d_v] bf16 | fp16; lse: host view [b, h_q, s_q] fp32; any strides.
Comparison compare(const Reference& ref, const TensorView& out, const TensorView& lse, const Tolerance& tol = {});

}  // namespace openmla::test
