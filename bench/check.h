#pragma once
// Correctness guards of the benchmark (the tests are the real check): a spot check of small problems
// against the CPU backend, and a count of non-finite outputs after each benchmarked decode.

#include <cuda_runtime.h>

#include <cstdint>
#include <string>
#include <vector>

#include "openmla/tensor.h"

namespace openmla::bench {

struct SpotCheck {
  std::string name;
  double max_excess = 0.0;     // max over elements of |gpu - cpu| / allowed; <= 1 passes
  double rel_frobenius = 0.0;  // ||gpu - cpu|| / ||cpu|| over out
  double max_lse_excess = 0.0;
  int64_t mismatches = 0;  // elements of out or lse outside the bound, NaN, or +inf in one only
  bool passed = false;
  std::string error;  // what was thrown, when the check could not run
};

// Decodes a few small problems on the GPU and with the CPU backend and compares them; a check that
// throws is reported as failed with its error.
std::vector<SpotCheck> run_spot_checks(cudaStream_t stream);

// Elements of `out` ([b, s_q, h_q, d_v], bf16 | fp16, contiguous) that are NaN or infinite.
int64_t count_nonfinite(const TensorView& out, cudaStream_t stream);

}  // namespace openmla::bench
