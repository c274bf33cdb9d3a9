#pragma once
// Device-side helpers of the GPU tests: a Problem uploaded to the GPU, and one decode through the public
// API (plan kernel, workspace, decode) read back to the host. Device memory and checked CUDA calls come
// from support/ (openmla_support).

#include <cstdint>
#include <functional>
#include <vector>

#include "cuda_error.h"
#include "cuda_memory.h"
#include "openmla/decode.h"
#include "openmla/plan.h"
#include "problem.h"

namespace openmla::test {

// True when a CUDA device is present; GPU tests skip with a message otherwise.
bool has_gpu();

#define OPENMLA_REQUIRE_GPU()                                             \
  do {                                                                    \
    if (!::openmla::test::has_gpu()) {                                    \
      GTEST_SKIP() << "no CUDA device on this machine: GPU test skipped"; \
    }                                                                     \
  } while (0)

// Skips a test that needs the Hopper kernel (hopper_kernel_available) where it cannot run.
#define OPENMLA_REQUIRE_HOPPER()                                                                  \
  do {                                                                                            \
    if (!::openmla::test::hopper_kernel_available()) {                                            \
      GTEST_SKIP() << "needs a compute capability 9.0 GPU and a build with sm_90a code: skipped"; \
    }                                                                                             \
  } while (0)

using support::DeviceBuffer;

// `view` with its data at `data` on cuda:0.
TensorView on_gpu(TensorView view, void* data);

// A host vector copied into a new device buffer of its size.
template <typename T>
DeviceBuffer upload_vector(const std::vector<T>& host) {
  DeviceBuffer buffer(static_cast<int64_t>(host.size() * sizeof(T)));
  buffer.upload(host.data(), buffer.bytes());
  return buffer;
}

// `count` elements of `buffer` from byte `offset`, copied to the host.
template <typename T>
std::vector<T> download_vector(const DeviceBuffer& buffer, size_t count, int64_t offset = 0) {
  std::vector<T> host(count);
  buffer.download(host.data(), static_cast<int64_t>(count * sizeof(T)), offset);
  return host;
}

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
// device too, so unwritten elements show). num_parts 0 lets openmla pick; `kernel` is DecodeArgs::kernel.
struct GpuRun {
  Output output;
  DecodeStatus status;
  Kernel kernel = Kernel::automatic;  // the kernel that ran (selected_kernel)
};
// `adjust` edits the arguments before the decode (an FP8 cache, say).
using AdjustArgs = std::function<void(DecodeArgs&)>;
GpuRun gpu_decode(const Problem& problem, const DeviceProblem& device, int64_t num_parts = 0,
                  Kernel kernel = Kernel::automatic, const AdjustArgs& adjust = nullptr);

// Whether the Hopper kernel can run here: cuda:0 has compute capability 9.0 and this build has
// sm_90a code (OPENMLA_TEST_SM90A, set by tests/gpu/CMakeLists.txt like the library's own flag).
bool hopper_kernel_available();

// The kernel an automatic decode of `problem` runs on cuda:0 in this process, from a cache of any
// format: sm90 where it serves the call (and OPENMLA_FORCE_PORTABLE is not 1), portable otherwise
// (also for a cache of no blocks, which has nothing to stream).
Kernel expected_automatic_kernel(const Problem& problem);

// Decode with a plan the caller made (for other lengths or shapes, or with its buffer overwritten); the
// workspace is sized for the problem's shapes.
GpuRun gpu_decode_with(const Problem& problem, const DeviceProblem& device, const Plan& plan,
                       Kernel kernel = Kernel::automatic, const AdjustArgs& adjust = nullptr);

// The kernels a test can name on cuda:0: portable, and sm90 where hopper_kernel_available().
std::vector<Kernel> kernels_here();

// Plan config of a problem on cuda:0.
PlanConfig gpu_plan_config(const Problem& problem, int64_t num_parts = 0);

}  // namespace openmla::test
