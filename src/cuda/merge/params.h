#pragma once
// What the merge kernel sees: pointers, int64 strides in elements, sizes.

#include <cstdint>

namespace openmla::lse_merge {

struct MergeParams {
  const void* out_parts;  // [n, b, s_q, h_q, d_v]
  int64_t op_stride_n, op_stride_b, op_stride_s, op_stride_h;
  const float* lse_parts;  // [n, b, h_q, s_q]
  int64_t lp_stride_n, lp_stride_b, lp_stride_h, lp_stride_s;
  void* out;  // [b, s_q, h_q, d_v]
  int64_t out_stride_b, out_stride_s, out_stride_h;
  float* lse;  // [b, h_q, s_q]
  int64_t lse_stride_b, lse_stride_h, lse_stride_s;
  int64_t n;
  int64_t b;
  int64_t s_q;
  int64_t h_q;
  int64_t d_v;
};

}  // namespace openmla::lse_merge
