#pragma once
// Checked CUDA runtime calls for the programs around the library (tests, benchmark, examples): a failed
// call throws std::runtime_error naming the call, where it was made and the CUDA error. The library
// itself checks its calls with its own helper (src/cuda/common/cuda_check.h) and never depends on this.

#include <cuda_runtime.h>

namespace openmla::support {

// Throws when status is not cudaSuccess. `call` is the source text of the call; file and line where it is.
void check_cuda(cudaError_t status, const char* call, const char* file, int line);

// The number of CUDA devices, 0 when the runtime finds none (no driver, no GPU): the one query whose
// failure is an answer rather than an error.
int cuda_device_count();

}  // namespace openmla::support

#define SUPPORT_CUDA(call) ::openmla::support::check_cuda((call), #call, __FILE__, __LINE__)
// After a kernel launch: its launch error now, not at the next synchronizing call.
#define SUPPORT_CUDA_LAUNCHED() SUPPORT_CUDA(cudaGetLastError())
