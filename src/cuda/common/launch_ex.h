#pragma once
// Kernel launch through cudaLaunchKernelEx, optionally with programmatic dependent launch (Hopper
// and later): the kernel may start while the previous one on the stream finishes, and waits for it
// with griddepcontrol.wait before reading its results. And a kernel's opt-in to more than 48 KB of
// dynamic shared memory, made once per device.

#include <cuda_runtime.h>

#include <array>
#include <cstdint>
#include <mutex>

#include "cuda_check.h"

namespace openmla::cuda {

// The largest gridDim.y and gridDim.z of a launch (gridDim.x goes to 2^31 - 1).
inline constexpr int64_t kMaxGridYZ = 65535;

// Opts kKernel in to kBytes of dynamic shared memory (above 48 KB a kernel must) once per device
// (the attribute belongs to the device's context), not on every launch.
template <auto* kKernel, int kBytes>
void allow_shared_memory() {
  constexpr int kMaxDevices = 64;
  static std::array<std::once_flag, kMaxDevices> once;
  int device = 0;
  OPENMLA_CUDA_CHECK(cudaGetDevice(&device));
  const auto set = [] {
    OPENMLA_CUDA_CHECK(cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kBytes));
  };
  if (device >= 0 && device < kMaxDevices) {
    std::call_once(once[device], set);
  } else {
    set();
  }
}

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
