// The CUDA cache write behind src/api/cache.cpp: device checks, then one kernel on the caller's stream.

#include <cuda_runtime.h>

#include "../../api/cache_backends.h"
#include "../../core/status.h"
#include "../common/device.h"
#include "launch.h"

namespace openmla::cuda {

namespace {

inline constexpr int64_t kVec = 8;  // 16 bytes of 2-byte elements

// True when the view's pointer is 16-byte aligned and the strides of its first `row_dims` dims are
// multiples of kVec elements (the last dim is contiguous).
bool vector_aligned(const TensorView& view, int row_dims) {
  if (reinterpret_cast<uintptr_t>(view.data) % static_cast<uintptr_t>(kVec * dtype_size(view.dtype)) != 0) {
    return false;
  }
  for (int d = 0; d < row_dims; ++d) {
    if (view.strides[d] % kVec != 0) {
      return false;
    }
  }
  return true;
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
  const bool vectorized = params.d_v % kVec == 0 && params.d_rope % kVec == 0 && vector_aligned(a.kv_c, 1) &&
                          (params.d_rope == 0 || vector_aligned(a.k_pe, 1)) && vector_aligned(a.k_cache, 2);
  cache_write::launch_write_cache(params, vectorized, static_cast<cudaStream_t>(a.stream));
}

void reset_status_word(const Buffer& status, void* stream) {
  require_device("status.device", status.device.index);
  check_device_pointer("status", status.data, status.device.index);
  DeviceScope scope(status.device.index);
  OPENMLA_CUDA_CHECK(cudaMemsetAsync(status.data, status::kOkByte, sizeof(int32_t), static_cast<cudaStream_t>(stream)));
}

}  // namespace openmla::cuda
