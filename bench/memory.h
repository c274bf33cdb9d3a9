#pragma once
// Owning handles of device memory (cudaMalloc) and pinned host memory (cudaMallocHost). Both are
// at least 256-byte aligned, as the openmla workspace requires (openmla::kWorkspaceAlignment).

#include <cuda_runtime.h>

#include <cstdint>
#include <utility>

#include "cuda_check.h"

namespace openmla::bench {

template <cudaError_t (*Free)(void*)>
class Memory {
 public:
  Memory() = default;
  Memory(void* data, int64_t bytes) : data_(data), bytes_(bytes) {}
  Memory(Memory&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}
  Memory& operator=(Memory&& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(bytes_, other.bytes_);
    return *this;
  }
  Memory(const Memory&) = delete;
  Memory& operator=(const Memory&) = delete;
  ~Memory() {
    if (data_ != nullptr) {
      Free(data_);
    }
  }

  void* get() const { return data_; }
  int64_t bytes() const { return bytes_; }
  template <typename T>
  T* as() const { return static_cast<T*>(data_); }

 private:
  void* data_ = nullptr;
  int64_t bytes_ = 0;
};

using DeviceMemory = Memory<cudaFree>;
using HostMemory = Memory<cudaFreeHost>;

// A zero-byte request still gets a valid (one-byte) allocation, so views never hold nullptr.
inline DeviceMemory device_alloc(int64_t bytes) {
  void* data = nullptr;
  BENCH_CUDA(cudaMalloc(&data, static_cast<size_t>(bytes > 0 ? bytes : 1)));
  return DeviceMemory(data, bytes);
}

inline HostMemory host_alloc(int64_t bytes) {
  void* data = nullptr;
  BENCH_CUDA(cudaMallocHost(&data, static_cast<size_t>(bytes > 0 ? bytes : 1)));
  return HostMemory(data, bytes);
}

}  // namespace openmla::bench
