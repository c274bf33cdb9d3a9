// The CUDA backend behind src/api: device checks, the plan kernel, and decode = the Hopper kernel
// where it serves the call or else the portable kernel, then the combine when the plan splits any
// sequence. The decode kernel writes the workspace's status record itself (core/status.h): no reset.

#include <cuda_runtime.h>

#include <bit>
#include <cstdlib>
#include <numbers>
#include <string>
#include <string_view>

#include "../api/backends.h"
#include "../api/cache_format.h"
#include "../api/check.h"
#include "../core/schedule.h"
#include "../core/status.h"
#include "../core/workspace.h"
#include "combine/launch.h"
#include "common/cuda_check.h"
#include "common/device.h"
#include "common/launch_ex.h"
#include "common/params.h"
#include "plan/launch.h"
#include "portable/launch.h"
#include "sm90/launch.h"

namespace openmla::cuda {

namespace {

// Programmatic dependent launch needs compute capability 9.0.
bool supports_dependent_launch(int device) {
  int major = 0;
  OPENMLA_CUDA_CHECK(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  return major >= 9;
}

void check_aligned(const char* name, const TensorView& view, int64_t bytes) {
  if (detail::is_empty(view)) {
    return;
  }
  const int64_t elements = bytes / dtype_size(view.dtype);
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
  const workspace::Layout ws =
      workspace::layout(c.num_parts, schedule::max_splits(c.batch, c.num_parts), s_q, h_q, a.d_v);
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
      .k_scale = detail::has_scale(a.cache_format) ? static_cast<const float*>(a.k_scale.data) : nullptr,
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
      .scale_log2 = scale * std::numbers::log2e_v<float>,
      .causal = a.causal,
  };
}

// OPENMLA_FORCE_PORTABLE=1 turns every automatic kernel choice into the portable kernel. Read once.
bool portable_forced_by_environment() {
  static const bool forced = [] {
    const char* value = std::getenv("OPENMLA_FORCE_PORTABLE");
    return value != nullptr && std::string_view(value) == "1";
  }();
  return forced;
}

// The CUDA kernel that a request names, for a decode or a plan ("call" / "plan" in the messages):
// sm90_unsupported() gives why the Hopper kernel cannot serve it, or nullptr.
template <typename Reason>
Kernel resolve_kernel(Kernel requested, const char* call, const char* what, Reason sm90_unsupported) {
  switch (requested) {
    case Kernel::automatic:
      return !portable_forced_by_environment() && sm90_unsupported() == nullptr ? Kernel::sm90 : Kernel::portable;
    case Kernel::portable:
      return Kernel::portable;
    case Kernel::sm90:
      if (const char* reason = sm90_unsupported()) {
        detail::fail("kernel", std::string("a kernel that serves the ") + call + " (sm90 needs " + reason + ")",
                     "sm90");
      }
      return Kernel::sm90;
    case Kernel::cpu:
      break;
  }
  detail::fail("kernel", std::string("automatic, portable or sm90 for a ") + what + " on a CUDA device",
               kernel_name(requested));
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

Kernel select_kernel(const DecodeArgs& a) {
  return resolve_kernel(a.kernel, "call", "decode", [&] { return sm90::decode_unsupported(a); });
}

Kernel plan_kernel(const PlanConfig& config) {
  require_device("device", config.device.index);
  return resolve_kernel(config.kernel, "plan", "plan", [&] { return sm90::plan_unsupported(config); });
}

int64_t default_num_parts(const PlanConfig& config) {
  const int device = config.device.index;
  require_device("device", device);
  int sms = 0;
  OPENMLA_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device));
  const int64_t rows = config.s_q * (config.h_q / config.h_kv);
  if (config.kernel == Kernel::sm90) {
    // One CTA per SM (the Hopper kernel's shared memory): parts = SMs / CTAs per part.
    const int64_t parts = sms / (sm90::m_tiles(rows) * config.h_kv);
    return parts < 1 ? 1 : parts;
  }
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
  if (a.plan->config.num_parts > kMaxGridYZ || a.k_cache.sizes[2] > kMaxGridYZ) {
    detail::fail("plan.config.num_parts and h_kv", "<= " + std::to_string(kMaxGridYZ) + " (CUDA grid)",
                 std::to_string(a.plan->config.num_parts) + " and " + std::to_string(a.k_cache.sizes[2]));
  }
  check_aligned("q", a.q, 16);
  check_aligned("k_cache", a.k_cache, 16);
  check_aligned("out", a.out, 8);
  if (a.skip_pointer_queries) {
    return;  // the caller vouches for every pointer's device (DecodeArgs::skip_pointer_queries)
  }
  check_device_view("q", a.q, device);
  check_device_view("k_cache", a.k_cache, device);
  if (detail::has_scale(a.cache_format)) {
    check_device_view("k_scale", a.k_scale, device);
  }
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
  const int64_t rows = config.s_q * (config.h_q / config.h_kv);
  const int64_t charge =
      config.kernel == Kernel::sm90 ? sm90::plan_charge(rows, config.cache_format) : schedule::kDefaultCharge;
  schedule::launch_planner(static_cast<const int32_t*>(cache_seqlens.data), cache_seqlens.strides[0], config.batch,
                           config.num_parts, charge, buffer, supports_dependent_launch(device),
                           static_cast<cudaStream_t>(stream));
}

void decode(const DecodeArgs& a, float scale) {
  const int device = a.q.device.index;
  DeviceScope scope(device);
  const auto stream = static_cast<cudaStream_t>(a.stream);
  if (a.q.sizes[0] == 0) {
    // An empty step: no kernel, nothing read; the workspace's status becomes the single word "ok".
    OPENMLA_CUDA_CHECK(cudaMemsetAsync(a.workspace.data, status::kOkByte, sizeof(int32_t), stream));
    return;
  }
  const DecodeParams params = make_params(a, scale);
  const Kernel kernel = select_kernel(a);
  const bool dependent = supports_dependent_launch(device);
  const int64_t num_parts = a.plan->config.num_parts;
  const int64_t h_kv = a.k_cache.sizes[2];
  if (kernel == Kernel::sm90) {
    sm90::launch_decode(params, a.q.dtype, a.cache_format, a.k_cache, num_parts, h_kv, stream);
  } else {
    const portable::KernelConfig config = portable::select_config(params.rows, device, a.cache_format);
    portable::launch_decode(params, a.q.dtype, a.cache_format, config, num_parts, h_kv, stream);
  }
  if (num_parts > 1) {
    combine::launch_combine(params, a.q.dtype, dependent, stream);
  }
}

void read_words(const Buffer& buffer, int64_t first, int64_t n, int32_t* words, void* stream) {
  require_device("workspace.device", buffer.device.index);
  DeviceScope scope(buffer.device.index);
  const auto s = static_cast<cudaStream_t>(stream);
  const auto* source = static_cast<const int32_t*>(buffer.data) + first;
  OPENMLA_CUDA_CHECK(cudaMemcpyAsync(words, source, n * sizeof(int32_t), cudaMemcpyDeviceToHost, s));
  OPENMLA_CUDA_CHECK(cudaStreamSynchronize(s));
}

}  // namespace openmla::cuda
