#include "cuda_memory.h"

#include <utility>

#include "cuda_error.h"

namespace openmla::support {

template <MemoryKind kKind>
CudaMemory<kKind>::CudaMemory(int64_t bytes) : bytes_(bytes) {
  const size_t n = static_cast<size_t>(bytes > 0 ? bytes : 1);
  if constexpr (kKind == MemoryKind::device) {
    SUPPORT_CUDA(cudaMalloc(&data_, n));
  } else {
    SUPPORT_CUDA(cudaMallocHost(&data_, n));
  }
}

template <MemoryKind kKind>
CudaMemory<kKind>::CudaMemory(CudaMemory&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

template <MemoryKind kKind>
CudaMemory<kKind>& CudaMemory<kKind>::operator=(CudaMemory&& other) noexcept {
  std::swap(data_, other.data_);
  std::swap(bytes_, other.bytes_);
  return *this;
}

// Errors of the free are not thrown from a destructor: a failing device reports them at the next call.
template <MemoryKind kKind>
CudaMemory<kKind>::~CudaMemory() {
  if (data_ == nullptr) {
    return;
  }
  if constexpr (kKind == MemoryKind::device) {
    cudaFree(data_);
  } else {
    cudaFreeHost(data_);
  }
}

template <MemoryKind kKind>
void CudaMemory<kKind>::upload(const void* host, int64_t bytes, int64_t offset) {
  SUPPORT_CUDA(cudaMemcpy(static_cast<char*>(data_) + offset, host, static_cast<size_t>(bytes), cudaMemcpyDefault));
}

template <MemoryKind kKind>
void CudaMemory<kKind>::download(void* host, int64_t bytes, int64_t offset) const {
  SUPPORT_CUDA(
      cudaMemcpy(host, static_cast<const char*>(data_) + offset, static_cast<size_t>(bytes), cudaMemcpyDefault));
}

template class CudaMemory<MemoryKind::device>;
template class CudaMemory<MemoryKind::pinned_host>;

}  // namespace openmla::support
