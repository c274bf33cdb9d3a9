// The CUDA backend behind src/api: device checks, the plan kernel, and decode = status reset, the
// portable kernel, and the combine when the plan splits any sequence.

#include <cuda_runtime.h>

#include <bit>
#include <string>

#include "../api/backends.h"
#include "../api/check.h"
#include "combine/launch.h"
#include "common/cuda_check.h"
#include "common/params.h"
#include "../core/workspace.h"
#include "plan/launch.h"
#include "../core/schedule.h"
#include "../core/status.h"
#include "portable/launch.h"

namespace openmla::cuda {

namespace {

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

// Programmatic dependent launch needs compute capability 9.0.
bool supports_dependent_launch(int device) {
  int major = 0;
  OPENMLA_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  return major >= 9;
}

// Throws unless `device` is a CUDA device of this process: the first check of every CUDA entry point.
void require_device(const char* name, int device) {
  const int count = device_count();
  if (count == 0) {
    detail::fail(name, "a CUDA device", "cuda:" + std::to_string(device) +
                                             ", but no CUDA device was found (no GPU, no NVIDIA driver, or a "
                                             "driver older than this build's CUDA runtime)");
  }
  if (device < 0 || device >= count) {
    detail::fail(name, "a CUDA device index in [0, " + std::to_string(count) + ")", std::to_string(device));
  }
}

void check_device_pointer(const char* name, const void* pointer, int device) {
  cudaPointerAttributes attributes{};
  OPENMLA_CUDA_CHECK(cudaPointerGetAttributes(&attributes, pointer));
  const bool on_device = attributes.type == cudaMemoryTypeDevice || attributes.type == cudaMemoryTypeManaged;
  if (!on_device) {
    detail::fail(name, "memory of cuda:" + std::to_string(device), "host memory");
  }
  if (attributes.device != device) {
    detail::fail(name, "memory of cuda:" + std::to_string(device), "memory of cuda:" + std::to_string(attributes.device));
  }
}

// A view holding no element is never dereferenced: its pointer (maybe null) and strides do not matter.
void check_device_view(const char* name, const TensorView& view, int device) {
  if (!detail::is_empty(view)) {
    check_device_pointer(name, view.data, device);
  }
}

void check_aligned(const char* name, const TensorView& view, int64_t elements) {
  if (detail::is_empty(view)) {
    return;
  }
  const int64_t bytes = elements * dtype_size(view.dtype);
  if (reinterpret_cast<uintptr_t>(view.data) % static_cast<uintptr_t>(bytes) != 0) {
    detail::fail(name, "data aligned to " + std::to_string(bytes) + " bytes (CUDA backend)", "a misaligned pointer");
  }
  for (int d = 0; d < view.rank - 1; ++d) {
    if (view.strides[d] % elements != 0) {
      detail::fail(std::string(name) + ".stride(" + std::to_string(d) + ")",
                   "a multiple of " + std::to_string(elements) + " elements (CUDA backend)",
                   std::to_string(view.strides[d]));
    }
  }
}

// Shapes come from the decode's views: the plan only says how the lengths are cut (openmla/plan.h).
DecodeParams make_params(const DecodeArgs& a, float scale) {
  const PlanConfig& c = a.plan->config;
  const int64_t s_q = a.q.sizes[1];
  const int64_t h_q = a.q.sizes[2];
  const int64_t page_size = a.k_cache.sizes[1];
  const workspace::Layout ws = workspace::layout(schedule::max_splits(c.batch, c.num_parts), s_q, h_q, a.d_v);
  char* base = static_cast<char*>(a.workspace.data);
  const int64_t group = h_q / a.k_cache.sizes[2];
  return DecodeParams{
      .q = a.q.data,
      .q_stride_b = a.q.strides[0],
      .q_stride_s = a.q.strides[1],
      .q_stride_h = a.q.strides[2],
      .k_cache = a.k_cache.data,
      .k_stride_block = a.k_cache.strides[0],
      .k_stride_token = a.k_cache.strides[1],
      .k_stride_head = a.k_cache.strides[2],
      .block_table = static_cast<const int32_t*>(a.block_table.data),
      .bt_stride_b = a.block_table.strides[0],
      .bt_stride_page = a.block_table.strides[1],
      .seqlens = static_cast<const int32_t*>(a.cache_seqlens.data),
      .seqlens_stride = a.cache_seqlens.strides[0],
      .out = a.out.data,
      .out_stride_b = a.out.strides[0],
      .out_stride_s = a.out.strides[1],
      .out_stride_h = a.out.strides[2],
      .lse = static_cast<float*>(a.lse.data),
      .lse_stride_b = a.lse.strides[0],
      .lse_stride_h = a.lse.strides[1],
      .lse_stride_s = a.lse.strides[2],
      .status = reinterpret_cast<int32_t*>(base),
      .partial_lse = reinterpret_cast<float*>(base + ws.lse_offset),
      .partial_out = reinterpret_cast<float*>(base + ws.out_offset),
      .plan = schedule::view(a.plan->buffer.data, c.batch, c.num_parts),
      .num_parts = static_cast<int32_t>(c.num_parts),
      .batch = static_cast<int32_t>(c.batch),
      .s_q = static_cast<int32_t>(s_q),
      .h_q = static_cast<int32_t>(h_q),
      .group = static_cast<int32_t>(group),
      .rows = static_cast<int32_t>(s_q * group),
      .page_size = static_cast<int32_t>(page_size),
      .page_shift = std::has_single_bit(static_cast<uint64_t>(page_size))
                        ? std::countr_zero(static_cast<uint64_t>(page_size))
                        : -1,
      .max_blocks = static_cast<int32_t>(a.block_table.sizes[1]),
      .num_blocks = a.k_cache.sizes[0],
      .scale_log2 = scale * 1.4426950408889634f,
      .causal = a.causal,
  };
}

}  // namespace

bool available() { return true; }

// No driver, a driver older than the CUDA runtime, a stub library and a machine without a GPU all mean
// that this process has no CUDA device: 0, so that callers say so rather than the runtime's words.
int32_t device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the error this call left, so that it does not surface later
    return 0;
  }
  return count;
}

int64_t default_num_parts(const PlanConfig& config) {
  const int device = config.device.index;
  require_device("device", device);
  int sms = 0;
  OPENMLA_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int64_t rows = config.s_q * (config.h_q / config.h_kv);
  DeviceScope scope(device);
  const portable::KernelConfig kernel = portable::select_config(rows, device);
  const int64_t ctas_per_head_tile = config.h_kv * portable::m_tiles(rows, kernel);
  const int64_t parts = static_cast<int64_t>(sms) * portable::ctas_per_sm(kernel) / ctas_per_head_tile;
  return parts < 1 ? 1 : parts;
}

void check_args(const DecodeArgs& a) {
  const int device = a.q.device.index;
  require_device("q.device", device);
  if (a.q.sizes[3] != kDQK) {
    detail::fail("q.size(3) (d_qk)", std::to_string(kDQK) + " on the CUDA backend", std::to_string(a.q.sizes[3]));
  }
  if (a.d_v != kDV) {
    detail::fail("d_v", std::to_string(kDV) + " on the CUDA backend", std::to_string(a.d_v));
  }
  if (a.q.sizes[1] * a.q.sizes[2] > INT32_MAX || a.k_cache.sizes[1] > INT32_MAX || a.block_table.sizes[1] > INT32_MAX) {
    detail::fail("q / k_cache / block_table", "sizes below 2^31", "larger ones");
  }
  if (a.plan->config.num_parts > 65535 || a.k_cache.sizes[2] > 65535) {
    detail::fail("plan.config.num_parts and h_kv", "<= 65535 (CUDA grid)",
                 std::to_string(a.plan->config.num_parts) + " and " + std::to_string(a.k_cache.sizes[2]));
  }
  check_aligned("q", a.q, 8);
  check_aligned("k_cache", a.k_cache, 8);
  check_aligned("out", a.out, 4);
  check_device_view("q", a.q, device);
  check_device_view("k_cache", a.k_cache, device);
  check_device_view("block_table", a.block_table, device);
  check_device_view("cache_seqlens", a.cache_seqlens, device);
  check_device_view("out", a.out, device);
  check_device_view("lse", a.lse, device);
  check_device_pointer("workspace", a.workspace.data, device);
  check_device_pointer("plan buffer", a.plan->buffer.data, device);
}

void plan(const PlanConfig& config, const TensorView& cache_seqlens, void* buffer, void* stream) {
  const int device = config.device.index;
  require_device("device", device);
  check_device_pointer("cache_seqlens", cache_seqlens.data, device);
  check_device_pointer("plan buffer", buffer, device);
  DeviceScope scope(device);
  schedule::launch_planner(static_cast<const int32_t*>(cache_seqlens.data), cache_seqlens.strides[0], config.batch,
                           config.num_parts, buffer, supports_dependent_launch(device),
                           static_cast<cudaStream_t>(stream));
}

void decode(const DecodeArgs& a, float scale) {
  const int device = a.q.device.index;
  DeviceScope scope(device);
  const auto stream = static_cast<cudaStream_t>(a.stream);
  OPENMLA_CUDA_CHECK(cudaMemsetAsync(a.workspace.data, status::kOkByte, sizeof(int32_t), stream));
  if (a.q.sizes[0] == 0) {
    return;  // an empty step: no kernel, nothing read
  }
  const DecodeParams params = make_params(a, scale);
  const portable::KernelConfig kernel = portable::select_config(params.rows, device);
  const bool dependent = supports_dependent_launch(device);
  portable::launch_decode(params, a.q.dtype, kernel, a.plan->config.num_parts, a.k_cache.sizes[2], stream);
  if (a.plan->config.num_parts > 1) {
    combine::launch_combine(params, a.q.dtype, dependent, stream);
  }
}

int32_t read_status_word(const Buffer& workspace, void* stream) {
  require_device("workspace.device", workspace.device.index);
  DeviceScope scope(workspace.device.index);
  int32_t word = 0;
  const auto s = static_cast<cudaStream_t>(stream);
  OPENMLA_CUDA_CHECK(cudaMemcpyAsync(&word, workspace.data, sizeof(word), cudaMemcpyDeviceToHost, s));
  OPENMLA_CUDA_CHECK(cudaStreamSynchronize(s));
  return word;
}

}  // namespace openmla::cuda
