#include "mapped_buffer.h"

#include <sys/mman.h>

#include <new>
#include <utility>

namespace openmla::test {

MappedBuffer::MappedBuffer(size_t bytes) : bytes_(bytes) {
  if (bytes == 0) {
    return;
  }
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    throw std::bad_alloc();
  }
  data_ = p;
}

MappedBuffer::MappedBuffer(MappedBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

MappedBuffer& MappedBuffer::operator=(MappedBuffer&& other) noexcept {
  std::swap(data_, other.data_);
  std::swap(bytes_, other.bytes_);
  return *this;
}

MappedBuffer::~MappedBuffer() {
  if (data_ != nullptr) {
    munmap(data_, bytes_);
  }
}

}  // namespace openmla::test
