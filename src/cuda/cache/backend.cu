// The CUDA cache write behind src/api/cache.cpp: device checks, then one kernel on the caller's stream.

#include <cuda_runtime.h>

#include "../../api/cache_backends.h"
#include "../../api/cache_format.h"
#include "../../core/status.h"
#include "../common/device.h"
#include "launch.h"

namespace openmla::cuda {

namespace {

inline constexpr int64_t kVec = 8;  // values per vector access: 16 bytes of 2-byte elements

// True when the view's pointer and the strides of its first `row_dims` dims, in bytes, are multiples of
// `bytes` (the last dim is contiguous): every row starts `bytes`-aligned.
bool rows_aligned(const TensorView& view, int row_dims, int64_t bytes) {
  if (reinterpret_cast<uintptr_t>(view.data) % static_cast<uintptr_t>(bytes) != 0) {
    return false;
  }
  for (int d = 0; d < row_dims; ++d) {
    if (view.strides[d] * dtype_size(view.dtype) % bytes != 0) {
      return false;
    }
  }
  return true;
}

// Whether the kernel of a.cache_format may use its vector accesses (cache_write::launch_write_cache).
bool vectorized(const WriteCacheArgs& a) {
  const int64_t d_v = a.kv_c.sizes[1];
  const int64_t d_rope = a.k_pe.sizes[1];
  const bool inputs = d_v % kVec == 0 && d_rope % kVec == 0 && rows_aligned(a.kv_c, 1, 16) &&
                      (d_rope == 0 || rows_aligned(a.k_pe, 1, 16));
  // A plain or 656-byte row is stored in 16-byte pieces, a per-tensor one in 8 bytes per 8 values.
  const int64_t cache_bytes = a.cache_format == CacheFormat::fp8_per_tensor ? 8 : 16;
  return inputs && rows_aligned(a.k_cache, 2, cache_bytes);
}

cache_write::WriteParams make_params(const WriteCacheArgs& a) {
  return cache_write::WriteParams{
      .kv_c = a.kv_c.data,
      .kv_c_stride = a.kv_c.strides[0],
      .k_pe = a.k_pe.data,
      .k_pe_stride = a.k_pe.strides[0],
      .slot_mapping = static_cast<const int64_t*>(a.slot_mapping.data),
      .slot_stride = a.slot_mapping.strides[0],
      .k_cache = a.k_cache.data,
      .k_stride_block = a.k_cache.strides[0],
      .k_stride_token = a.k_cache.strides[1],
      .k_scale = detail::has_scale(a.cache_format) ? static_cast<const float*>(a.k_scale.data) : nullptr,
      .status = static_cast<int32_t*>(a.status.data),
      .tokens = a.slot_mapping.sizes[0],
      .page_size = a.k_cache.sizes[1],
      .slots = a.k_cache.sizes[0] * a.k_cache.sizes[1],
      .d_v = a.kv_c.sizes[1],
      .d_rope = a.k_pe.sizes[1],
  };
}

}  // namespace

void check_write_cache_args(const WriteCacheArgs& a) {
  const int device = a.k_cache.device.index;
  require_device("k_cache.device", device);
  check_device_view("kv_c", a.kv_c, device);
  check_device_view("k_pe", a.k_pe, device);
  check_device_view("slot_mapping", a.slot_mapping, device);
  check_device_view("k_cache", a.k_cache, device);
  if (detail::has_scale(a.cache_format)) {
    check_device_view("k_scale", a.k_scale, device);
  }
  if (a.status.data != nullptr) {
    check_device_pointer("status", a.status.data, device);
  }
}

void write_cache(const WriteCacheArgs& a) {
  const cache_write::WriteParams params = make_params(a);
  if (params.tokens == 0) {
    return;
  }
  DeviceScope scope(a.k_cache.device.index);
  cache_write::launch_write_cache(params, a.cache_format, a.kv_c.dtype, vectorized(a),
                                  static_cast<cudaStream_t>(a.stream));
}

void reset_status_word(const Buffer& status, void* stream) {
  require_device("status.device", status.device.index);
  check_device_pointer("status", status.data, status.device.index);
  DeviceScope scope(status.device.index);
  OPENMLA_CUDA_CHECK(cudaMemsetAsync(status.data, status::kOkByte, sizeof(int32_t), static_cast<cudaStream_t>(stream)));
}

}  // namespace openmla::cuda
