#include "openmla/cache.h"

#include <cstdint>
#include <string>

#include "../core/status.h"
#include "backends.h"
#include "cache_backends.h"
#include "cache_format.h"
#include "check.h"
#include "overlap.h"

namespace openmla {

static_assert(kMaxWriteTokens == status::kMaxBatch);
static_assert(kWriteStatusBytes == sizeof(int32_t));

namespace {

using detail::check_size;
using detail::fail;

// kWriteStatusBytes of 4-byte aligned memory.
void check_status_word(const Buffer& status) {
  if (status.bytes < kWriteStatusBytes) {
    fail("status", ">= " + std::to_string(kWriteStatusBytes) + " bytes (kWriteStatusBytes)",
         std::to_string(status.bytes) + " bytes");
  }
  if (reinterpret_cast<uintptr_t>(status.data) % alignof(int32_t) != 0) {
    fail("status", "4-byte aligned data", "a misaligned pointer");
  }
}

// Empty (no record), or a status word on k_cache's device.
void check_status_buffer(const Buffer& status, const Device& device) {
  if (status.data == nullptr) {
    return;
  }
  if (!(status.device == device)) {
    fail("status", "device " + detail::device_string(device), detail::device_string(status.device));
  }
  check_status_word(status);
}

// Shapes, dtypes and sizes first, then pointers and strides, then memory: a view with a zero dimension
// gets the size rule it breaks as its message, whatever its pointer.
void check_args(const WriteCacheArgs& a) {
  const Device device = a.k_cache.device;
  const detail::CacheOperand cache{
      .k_cache = a.k_cache, .format = a.cache_format, .k_scale = a.k_scale, .device = device};
  // A plain cache: fp32 on the CPU too, as decode has it there (exact float models); bf16 / fp16 everywhere.
  if (device.type == DeviceType::cpu) {
    detail::check_cache_views(cache, {DType::bf16, DType::fp16, DType::fp32});
  } else {
    detail::check_cache_views(cache, {DType::bf16, DType::fp16});
  }
  // The rows: the plain cache's dtype, or the model's bf16 / fp16 that an FP8 cache quantizes.
  if (a.cache_format == CacheFormat::plain) {
    detail::check_view("kv_c", a.kv_c, 2, "[tokens, d_v]", {a.k_cache.dtype}, device);
  } else {
    detail::check_view("kv_c", a.kv_c, 2, "[tokens, d_v]", {DType::bf16, DType::fp16}, device);
  }
  detail::check_view("k_pe", a.k_pe, 2, "[tokens, d_qk - d_v]", {a.kv_c.dtype}, device);
  detail::check_view("slot_mapping", a.slot_mapping, 1, "[tokens]", {DType::int64}, device);

  const int64_t tokens = a.kv_c.sizes[0];
  const int64_t d_v = a.kv_c.sizes[1];
  const int64_t d_rope = a.k_pe.sizes[1];
  detail::check_positive("kv_c.size(1) (d_v)", d_v);
  detail::check_at_most("kv_c.size(0) (tokens)", tokens, kMaxWriteTokens);
  detail::check_positive("k_cache.size(1) (page_size)", a.k_cache.sizes[1]);
  detail::check_at_most("k_cache.size(1) (page_size)", a.k_cache.sizes[1], kMaxDim);
  check_size("k_cache", a.k_cache, 2, 1, "h_kv: one latent head");
  if (d_v > kMaxDim - d_rope) {
    fail("kv_c.size(1) + k_pe.size(1) (d_qk)", "<= " + std::to_string(kMaxDim),
         std::to_string(d_v) + " + " + std::to_string(d_rope));
  }
  detail::check_cache_sizes(cache, {.d_qk = d_v + d_rope,
                                    .d_qk_name = "kv_c.size(1) + k_pe.size(1) (d_qk)",
                                    .d_qk_from = "kv_c.size(1) + k_pe.size(1)",
                                    .d_v = d_v,
                                    .d_v_name = "kv_c.size(1) (d_v)"});
  check_size("k_pe", a.k_pe, 0, tokens, "tokens from kv_c");
  check_size("slot_mapping", a.slot_mapping, 0, tokens, "tokens from kv_c");
  detail::check_data("kv_c", a.kv_c);
  detail::check_data("k_pe", a.k_pe);
  detail::check_data("slot_mapping", a.slot_mapping);
  detail::check_data("k_cache", a.k_cache);
  detail::check_cache_data(cache);
  detail::check_last_dim_contiguous("kv_c", a.kv_c);
  detail::check_last_dim_contiguous("k_pe", a.k_pe);
  detail::check_last_dim_contiguous("k_cache", a.k_cache);
  detail::check_element_aligned("kv_c", a.kv_c);
  detail::check_element_aligned("k_pe", a.k_pe);
  detail::check_element_aligned("slot_mapping", a.slot_mapping);
  detail::check_element_aligned("k_cache", a.k_cache);
  if (detail::has_scale(a.cache_format)) {
    detail::check_element_aligned("k_scale", a.k_scale);
  }
  check_status_buffer(a.status, device);

  using detail::span_of;
  const detail::Named k_cache{"k_cache", span_of("k_cache", a.k_cache)};
  const detail::Named kv_c{"kv_c", span_of("kv_c", a.kv_c)};
  const detail::Named k_pe{"k_pe", span_of("k_pe", a.k_pe)};
  const detail::Named slot_mapping{"slot_mapping", span_of("slot_mapping", a.slot_mapping)};
  const detail::Named k_scale{"k_scale",
                              detail::has_scale(a.cache_format) ? span_of("k_scale", a.k_scale) : detail::Span{}};
  const detail::Named status{"status", span_of(a.status, a.status.data == nullptr ? 0 : kWriteStatusBytes)};
  detail::check_no_self_overlap("k_cache", a.k_cache);
  detail::check_disjoint(k_cache, {kv_c, k_pe, slot_mapping, k_scale, status}, "no input or other output");
  detail::check_disjoint(status, {kv_c, k_pe, slot_mapping, k_scale}, "no input");

  if (device.type == DeviceType::cuda && !cuda::available()) {
    detail::fail_no_cuda("k_cache.device", detail::device_string(device));
  }
}

}  // namespace

void write_cache(const WriteCacheArgs& args) {
  check_args(args);
  if (args.k_cache.device.type == DeviceType::cpu) {
    cpu::check_slots(args);
    cpu::write_cache(args);
  } else {
    cuda::check_write_cache_args(args);
    cuda::write_cache(args);
  }
}

void reset_status(const Buffer& status, void* stream) {
  if (status.data == nullptr) {
    fail("status", "a non-null data pointer", "nullptr");
  }
  check_status_word(status);
  if (status.device.type == DeviceType::cpu) {
    *static_cast<int32_t*>(status.data) = status::kOkWord;
  } else if (!cuda::available()) {
    detail::fail_no_cuda("status.device", detail::device_string(status.device));
  } else {
    cuda::reset_status_word(status, stream);
  }
}

}  // namespace openmla
