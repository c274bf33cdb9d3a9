#include "openmla/plan.h"

#include "../core/schedule.h"
#include "../core/status.h"
#include "backends.h"
#include "cache_format.h"
#include "check.h"
#include "overlap.h"

namespace openmla {

static_assert(kMaxBatch == status::kMaxBatch && kMaxParts == schedule::kMaxParts);

namespace {

void check_config(const PlanConfig& config) {
  if (config.batch < 0) {
    detail::fail("batch", ">= 0", std::to_string(config.batch));
  }
  detail::check_positive("s_q", config.s_q);
  detail::check_positive("h_q", config.h_q);
  detail::check_positive("h_kv", config.h_kv);
  detail::check_positive("page_size", config.page_size);
  if (config.num_parts < 0) {
    detail::fail("num_parts", ">= 0 (0 picks one)", std::to_string(config.num_parts));
  }
  detail::check_at_most("batch", config.batch, kMaxBatch);
  detail::check_at_most("num_parts", config.num_parts, kMaxParts);
  detail::check_at_most("s_q", config.s_q, kMaxDim);
  detail::check_at_most("h_q", config.h_q, kMaxDim);
  detail::check_at_most("h_kv", config.h_kv, kMaxDim);
  detail::check_at_most("page_size", config.page_size, kMaxDim);
  detail::check_at_most("s_q * h_q", config.s_q * config.h_q, kMaxDim);
  if (config.h_q % config.h_kv != 0) {
    detail::fail("h_q", "a multiple of h_kv = " + std::to_string(config.h_kv), std::to_string(config.h_q));
  }
  detail::check_cache_format("cache_format", config.cache_format);
  if (config.device.type == DeviceType::cuda && !cuda::available()) {
    detail::fail_no_cuda("device", detail::device_string(config.device));
  }
}

}  // namespace

PlanConfig resolve_plan_config(const PlanConfig& config) {
  check_config(config);
  PlanConfig resolved = config;
  if (config.device.type == DeviceType::cpu) {
    if (config.kernel != Kernel::automatic && config.kernel != Kernel::cpu) {
      detail::fail("kernel", "automatic or cpu for a plan on the CPU", kernel_name(config.kernel));
    }
    resolved.kernel = Kernel::cpu;
  } else {
    resolved.kernel = cuda::plan_kernel(config);
  }
  if (resolved.num_parts == 0) {
    resolved.num_parts =
        config.device.type == DeviceType::cpu ? cpu::default_num_parts() : cuda::default_num_parts(resolved);
  }
  return resolved;
}

int64_t plan_buffer_size(const PlanConfig& config) {
  const PlanConfig resolved = resolve_plan_config(config);
  return schedule::layout(resolved.batch, resolved.num_parts).bytes;
}

Plan plan(const PlanConfig& config, const TensorView& cache_seqlens, const Buffer& buffer, void* stream) {
  const PlanConfig resolved = resolve_plan_config(config);
  detail::check_view("cache_seqlens", cache_seqlens, 1, "[b]", {DType::int32}, resolved.device);
  detail::check_size("cache_seqlens", cache_seqlens, 0, resolved.batch, "batch of the plan config");
  detail::check_data("cache_seqlens", cache_seqlens);
  if (buffer.data == nullptr) {
    detail::fail("plan buffer", "a non-null data pointer", "nullptr");
  }
  if (!(buffer.device == resolved.device)) {
    detail::fail("plan buffer", "device " + detail::device_string(resolved.device),
                 detail::device_string(buffer.device));
  }
  const int64_t need = schedule::layout(resolved.batch, resolved.num_parts).bytes;
  if (buffer.bytes < need) {
    detail::fail("plan buffer", ">= " + std::to_string(need) + " bytes (plan_buffer_size)",
                 std::to_string(buffer.bytes) + " bytes");
  }
  if (reinterpret_cast<uintptr_t>(buffer.data) % 8 != 0) {
    detail::fail("plan buffer", "8-byte aligned data", "a misaligned pointer");
  }
  detail::check_disjoint({"plan buffer", detail::span_of(buffer, need)},
                         {{"cache_seqlens", detail::span_of("cache_seqlens", cache_seqlens)}}, "no input");
  // An empty step has nothing to plan: decode of b = 0 reads no plan.
  if (resolved.batch == 0) {
    return Plan{resolved, buffer};
  }
  if (resolved.device.type == DeviceType::cpu) {
    cpu::plan(resolved, cache_seqlens, buffer.data);
  } else {
    cuda::plan(resolved, cache_seqlens, buffer.data, stream);
  }
  return Plan{resolved, buffer};
}

}  // namespace openmla
