#pragma once
// Recording an offence in a decode's status word (core/status.h) from a decode kernel.

#include <cstdint>

#include "ptx.cuh"

namespace openmla::cuda {

// atomicMin of `word` into the status word, after the reset kernel that precedes the decode kernel
// (status/reset.h) has completed: the decode kernel may be launched with programmatic dependence on
// it, and then starts before the reset's write is guaranteed visible. Without that dependence the
// wait returns at once.
__device__ __forceinline__ void record_status(int32_t* status, int32_t word) {
  ptx::grid_dependency_wait();
  atomicMin(status, word);
}

}  // namespace openmla::cuda
