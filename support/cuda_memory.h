#pragma once
// Owning CUDA allocations for the programs around the library: device memory (cudaMalloc) and
// page-locked host memory (cudaMallocHost). Both are at least 256-byte aligned, as the workspace needs
// (openmla::kWorkspaceAlignment). A request for zero bytes still allocates one, so that the pointer of a
// view made from it is never null.

#include <cuda_runtime.h>

#include <cstdint>

namespace openmla::support {

enum class MemoryKind { device, pinned_host };

template <MemoryKind kKind>
class CudaMemory {
 public:
  CudaMemory() = default;
  explicit CudaMemory(int64_t bytes);  // throws std::runtime_error when the allocation fails
  CudaMemory(CudaMemory&& other) noexcept;
  CudaMemory& operator=(CudaMemory&& other) noexcept;
  CudaMemory(const CudaMemory&) = delete;
  CudaMemory& operator=(const CudaMemory&) = delete;
  ~CudaMemory();

  void* data() const { return data_; }
  int64_t bytes() const { return bytes_; }
  template <typename T>
  T* as() const {
    return static_cast<T*>(data_);
  }

  // Synchronous copies from / to host memory, `offset` bytes into this allocation.
  void upload(const void* host, int64_t bytes, int64_t offset = 0);
  void download(void* host, int64_t bytes, int64_t offset = 0) const;

 private:
  void* data_ = nullptr;
  int64_t bytes_ = 0;
};

using DeviceBuffer = CudaMemory<MemoryKind::device>;
using PinnedBuffer = CudaMemory<MemoryKind::pinned_host>;

extern template class CudaMemory<MemoryKind::device>;
extern template class CudaMemory<MemoryKind::pinned_host>;

}  // namespace openmla::support
