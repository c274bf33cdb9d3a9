#pragma once
// Kernel launch through cudaLaunchKernelEx, optionally with programmatic dependent launch (Hopper
// and later): the kernel may start while the previous one on the stream finishes, and waits for it
// with griddepcontrol.wait before reading its results.

#include <cuda_runtime.h>

#include <cstdint>

#include "cuda_check.h"

namespace openmla::cuda {

// The largest gridDim.y and gridDim.z of a launch (gridDim.x goes to 2^31 - 1).
inline constexpr int64_t kMaxGridYZ = 65535;

template <typename... Params, typename... Args>
void launch_kernel(void (*kernel)(Params...), dim3 grid, dim3 block, int smem_bytes, cudaStream_t stream,
                   bool dependent_launch, Args&&... args) {
  cudaLaunchAttribute attribute{};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = static_cast<size_t>(smem_bytes);
  config.stream = stream;
  config.attrs = dependent_launch ? &attribute : nullptr;
  config.numAttrs = dependent_launch ? 1 : 0;
  OPENMLA_CUDA_CHECK(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}

}  // namespace openmla::cuda
