// The CUDA merge behind src/api/merge.cpp: device checks, then one kernel on the caller's stream.

#include <cuda_runtime.h>

#include "../../api/merge_backends.h"
#include "../common/device.h"
#include "launch.h"

namespace openmla::cuda {

namespace {

inline constexpr int64_t kVec = 4;

// True when every pointer and stride of `view` that a lane's 4-column access uses is a multiple of 4
// elements (the last dim is contiguous).
bool vector_aligned(const TensorView& view) {
  if (reinterpret_cast<uintptr_t>(view.data) % static_cast<uintptr_t>(kVec * dtype_size(view.dtype)) != 0) {
    return false;
  }
  for (int d = 0; d < view.rank - 1; ++d) {
    if (view.strides[d] % kVec != 0) {
      return false;
    }
  }
  return true;
}

lse_merge::MergeParams make_params(const MergeArgs& a) {
  const TensorView& op = a.out_parts;
  const TensorView& lp = a.lse_parts;
  return lse_merge::MergeParams{
      .out_parts = op.data,
      .op_stride_n = op.strides[0],
      .op_stride_b = op.strides[1],
      .op_stride_s = op.strides[2],
      .op_stride_h = op.strides[3],
      .lse_parts = static_cast<const float*>(lp.data),
      .lp_stride_n = lp.strides[0],
      .lp_stride_b = lp.strides[1],
      .lp_stride_h = lp.strides[2],
      .lp_stride_s = lp.strides[3],
      .out = a.out.data,
      .out_stride_b = a.out.strides[0],
      .out_stride_s = a.out.strides[1],
      .out_stride_h = a.out.strides[2],
      .lse = static_cast<float*>(a.lse.data),
      .lse_stride_b = a.lse.strides[0],
      .lse_stride_h = a.lse.strides[1],
      .lse_stride_s = a.lse.strides[2],
      .n = op.sizes[0],
      .b = op.sizes[1],
      .s_q = op.sizes[2],
      .h_q = op.sizes[3],
      .d_v = op.sizes[4],
  };
}

}  // namespace

void check_merge_args(const MergeArgs& a) {
  const int device = a.out_parts.device.index;
  require_device("out_parts.device", device);
  check_device_view("out_parts", a.out_parts, device);
  check_device_view("lse_parts", a.lse_parts, device);
  check_device_view("out", a.out, device);
  check_device_view("lse", a.lse, device);
}

void merge(const MergeArgs& a) {
  const lse_merge::MergeParams params = make_params(a);
  if (params.b * params.s_q * params.h_q == 0) {
    return;
  }
  DeviceScope scope(a.out_parts.device.index);
  const bool vectorized = params.d_v % kVec == 0 && vector_aligned(a.out_parts) && vector_aligned(a.out);
  lse_merge::launch_merge(params, a.out_parts.dtype, a.out.dtype, vectorized, static_cast<cudaStream_t>(a.stream));
}

}  // namespace openmla::cuda
