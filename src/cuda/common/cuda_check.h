#pragma once
// Every CUDA runtime call and launch is checked; a failure becomes openmla::Error.

#include <cuda_runtime.h>

#include <string>

#include "openmla/error.h"

namespace openmla::cuda {

inline void check_cuda(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw Error(std::string("openmla: CUDA error in ") + what + ": " + cudaGetErrorName(status) + " (" +
                cudaGetErrorString(status) + ")");
  }
}

}  // namespace openmla::cuda

#define OPENMLA_CUDA_CHECK(call) ::openmla::cuda::check_cuda((call), #call)
