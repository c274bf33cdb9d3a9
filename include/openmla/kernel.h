#pragma once
// The kernels that can run a decode, for a plan to be made for and a decode to name.

#include <cstdint>

namespace openmla {

enum class Kernel : int32_t {
  automatic = 0,  // openmla chooses: sm90 wherever it serves the call, portable otherwise (CUDA)
  portable = 1,   // the portable CUDA kernel (mma.sync): every GPU of compute capability >= 8.0
  sm90 = 2,       // the Hopper kernel (TMA + wgmma): compute capability 9.0, page_size a multiple of 64
  cpu = 3,        // the CPU backend
};

// "automatic", "portable", "sm90" or "cpu".
const char* kernel_name(Kernel kernel);

}  // namespace openmla
