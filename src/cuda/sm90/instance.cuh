#pragma once
// The launch of one Hopper kernel instance; included by one file per element type (instantiations/).

#include <array>
#include <mutex>

#include "../common/cuda_check.h"
#include "../common/launch_ex.h"
#include "kernel.cuh"
#include "launch.h"

namespace openmla::sm90 {

// The kernel needs more than 48 KB of shared memory: opt in once per device (the attribute belongs
// to the device's context), not on every launch.
template <typename T>
void allow_shared_memory(int device) {
  constexpr int kMaxDevices = 64;
  static std::array<std::once_flag, kMaxDevices> once;
  const auto set = [] {
    OPENMLA_CUDA_CHECK(cudaFuncSetAttribute(&decode_kernel<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            sizeof(typename Traits<T>::Shared)));
  };
  if (device >= 0 && device < kMaxDevices) {
    std::call_once(once[device], set);
  } else {
    set();
  }
}

// The decode kernel follows the status reset (a memset), so it is launched without programmatic
// dependence; it lets the combine kernel launch early instead.
template <typename T>
void launch_instance(const cuda::DecodeParams& params, const CUtensorMap& cache_map, dim3 grid, cudaStream_t stream) {
  int device = 0;
  OPENMLA_CUDA_CHECK(cudaGetDevice(&device));
  allow_shared_memory<T>(device);
  cuda::launch_kernel(&decode_kernel<T>, grid, dim3(kThreads), sizeof(typename Traits<T>::Shared), stream, false,
                      params, cache_map);
}

}  // namespace openmla::sm90
