#pragma once
// Zero-filled host memory from mmap(MAP_NORESERVE): pages never touched cost nothing, so a test can own
// a cache of many GiB and write only the pages its sequences use.

#include <cstddef>

namespace openmla::test {

class MappedBuffer {
 public:
  MappedBuffer() = default;
  explicit MappedBuffer(size_t bytes);  // throws std::bad_alloc when the mapping fails
  MappedBuffer(MappedBuffer&& other) noexcept;
  MappedBuffer& operator=(MappedBuffer&& other) noexcept;
  MappedBuffer(const MappedBuffer&) = delete;
  MappedBuffer& operator=(const MappedBuffer&) = delete;
  ~MappedBuffer();

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

}  // namespace openmla::test
