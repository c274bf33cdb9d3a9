#pragma once
// Times one case: decode (the per-layer cost) and plan (once per decoding step), each over CUDA-graph
// replays rotating among input sets so that no replay finds its inputs in L2.

#include <cuda_runtime.h>

#include <cstdint>

#include "cases.h"
#include "timing.h"

namespace openmla::bench {

struct CaseResult {
  Case shape;
  double mean_s_k = 0.0;  // mean of the drawn lengths
  int input_sets = 1;     // input sets rotated through
  int64_t num_parts = 0;  // the plan's resolved work parts
  Timing decode;
  Timing plan;
  // Host time of one decode call (timing.h host_us_per_call), as the C++ API checks by default and
  // with DecodeArgs::skip_pointer_queries; NaN when decode cannot be captured.
  double decode_host_us = 0.0;
  double decode_host_us_unqueried = 0.0;
};

CaseResult measure_case(const Case& c, int64_t l2_bytes, bool quick, cudaStream_t stream);

}  // namespace openmla::bench
