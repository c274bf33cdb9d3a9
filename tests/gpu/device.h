#pragma once
// Device-side helpers of the GPU tests: owned device memory, a Problem uploaded to the GPU, and one
// decode through the public API (plan kernel, workspace, decode) read back to the host.

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "openmla/decode.h"
#include "openmla/plan.h"
#include "problem.h"

namespace openmla::test {

// True when a CUDA device is present; GPU tests skip with a message otherwise.
bool has_gpu();

#define OPENMLA_REQUIRE_GPU()                                               \
  do {                                                                      \
    if (!::openmla::test::has_gpu()) {                                      \
      GTEST_SKIP() << "no CUDA device on this machine: GPU test skipped";   \
    }                                                                       \
  } while (0)

void cuda_ok(cudaError_t status, const char* what);

class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t bytes);
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer();

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  void upload(const void* host, size_t bytes, size_t offset = 0);
  void download(void* host, size_t bytes, size_t offset = 0) const;

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
};

// A Problem's inputs on the GPU, with views in the Problem's shapes.
struct DeviceProblem {
  DeviceBuffer q;            // [b, s_q, h_q, d_qk]
  DeviceBuffer k_cache;      // [num_blocks, page_size, h_kv, d_qk]
  DeviceBuffer block_table;  // [b, max_blocks_per_seq]
  DeviceBuffer seqlens;      // [b]

  TensorView q_view(const Problem& p) const;
  TensorView k_cache_view(const Problem& p) const;
  TensorView block_table_view(const Problem& p) const;
  TensorView seqlens_view(const Problem& p) const;
};

DeviceProblem upload(const Problem& problem);

// Plan and decode on the GPU, results copied back into an Output (pre-filled with sentinels on the
// device too, so unwritten elements show). num_parts 0 lets openmla pick.
struct GpuRun {
  Output output;
  DecodeStatus status;
};
GpuRun gpu_decode(const Problem& problem, const DeviceProblem& device, int64_t num_parts = 0);

// Decode with a plan the caller made (for other lengths or shapes, or with its buffer overwritten); the
// workspace is sized for the problem's shapes.
GpuRun gpu_decode_with(const Problem& problem, const DeviceProblem& device, const Plan& plan);

// Plan config of a problem on cuda:0.
PlanConfig gpu_plan_config(const Problem& problem, int64_t num_parts = 0);

}  // namespace openmla::test
