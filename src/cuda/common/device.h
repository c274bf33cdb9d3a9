#pragma once
// Host-side device handling shared by the CUDA entry points: the current device for a scope, and the
// checks that a pointer is memory of the expected device.

#include <cuda_runtime.h>

#include <string>

#include "../../api/backends.h"
#include "../../api/check.h"
#include "cuda_check.h"

namespace openmla::cuda {

// Makes `device` current for the scope and restores the caller's device after.
class DeviceScope {
 public:
  explicit DeviceScope(int device) {
    OPENMLA_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) {
      OPENMLA_CUDA_CHECK(cudaSetDevice(device));
    }
  }
  ~DeviceScope() {
    int current = previous_;
    if (cudaGetDevice(&current) == cudaSuccess && current != previous_) {
      cudaSetDevice(previous_);
    }
  }
  DeviceScope(const DeviceScope&) = delete;
  DeviceScope& operator=(const DeviceScope&) = delete;

 private:
  int previous_ = 0;
};

inline void check_device_pointer(const char* name, const void* pointer, int device) {
  cudaPointerAttributes attributes{};
  OPENMLA_CUDA_CHECK(cudaPointerGetAttributes(&attributes, pointer));
  const bool on_device = attributes.type == cudaMemoryTypeDevice || attributes.type == cudaMemoryTypeManaged;
  if (!on_device) {
    detail::fail(name, "memory of cuda:" + std::to_string(device), "host memory");
  }
  if (attributes.device != device) {
    detail::fail(name, "memory of cuda:" + std::to_string(device),
                 "memory of cuda:" + std::to_string(attributes.device));
  }
}

// Throws unless `device` is a CUDA device of this process: the first check of every CUDA entry point.
inline void require_device(const char* name, int device) {
  const int count = device_count();
  if (count == 0) {
    detail::fail(name, "a CUDA device",
                 "cuda:" + std::to_string(device) +
                     ", but no CUDA device was found (no GPU, no NVIDIA driver, or a "
                     "driver older than this build's CUDA runtime)");
  }
  if (device < 0 || device >= count) {
    detail::fail(name, "a CUDA device index in [0, " + std::to_string(count) + ")", std::to_string(device));
  }
}

// A view holding no element is never dereferenced: its pointer (maybe null) and strides do not matter.
inline void check_device_view(const char* name, const TensorView& view, int device) {
  if (!detail::is_empty(view)) {
    check_device_pointer(name, view.data, device);
  }
}

}  // namespace openmla::cuda
