#pragma once
// One timed decode of a demo problem on one backend; results always come back in host memory.

#include "problem.h"

namespace openmla::demo {

struct Run {
  test::Output output;
  double seconds = 0.0;  // median decode time (plan excluded: it is made once per step, for every layer)
};

Run run_on_cpu(const test::Problem& problem);

// The number of CUDA devices; 0 in a build without the CUDA backend.
int cuda_device_count();

// Decode on cuda:0, timed with CUDA events.
Run run_on_cuda(const test::Problem& problem);

}  // namespace openmla::demo
