// The CPU merge: one pass over the rows, one thread (the work is a few multiply-adds per element read).

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "../api/merge_backends.h"
#include "../core/merge_row.h"
#include "half.h"

namespace openmla::cpu {

namespace {

// dst[d] += weight * src[d] over the d_v values of one part's row, read in its dtype.
void accumulate(const void* base, int64_t offset, DType dtype, float weight, float* dst, int64_t d_v) {
  if (dtype == DType::fp32) {
    const float* src = static_cast<const float*>(base) + offset;  // [d_v]
    for (int64_t d = 0; d < d_v; ++d) {
      dst[d] += weight * src[d];
    }
    return;
  }
  for (int64_t d = 0; d < d_v; ++d) {
    dst[d] += weight * load_half(base, offset + d, dtype);
  }
}

void store_row(void* base, int64_t offset, DType dtype, const float* src, int64_t d_v) {
  if (dtype == DType::fp32) {
    std::copy(src, src + d_v, static_cast<float*>(base) + offset);
    return;
  }
  for (int64_t d = 0; d < d_v; ++d) {
    store_half(base, offset + d, src[d], dtype);
  }
}

}  // namespace

void merge(const MergeArgs& a) {
  const TensorView& op = a.out_parts;  // [n, b, s_q, h_q, d_v]
  const TensorView& lp = a.lse_parts;  // [n, b, h_q, s_q]
  const int64_t n = op.sizes[0];
  const int64_t b = op.sizes[1];
  const int64_t s_q = op.sizes[2];
  const int64_t h_q = op.sizes[3];
  const int64_t d_v = op.sizes[4];
  const auto* part_lse = static_cast<const float*>(lp.data);
  auto* lse = static_cast<float*>(a.lse.data);
  std::vector<float> acc(static_cast<size_t>(d_v));  // [d_v]
  for (int64_t seq = 0; seq < b; ++seq) {
    for (int64_t i = 0; i < s_q; ++i) {
      for (int64_t h = 0; h < h_q; ++h) {
        const float* row_lse = part_lse + seq * lp.strides[1] + h * lp.strides[2] + i * lp.strides[3];  // [n]
        const float merged = lse_merge::union_lse(row_lse, lp.strides[0], n);
        // A NaN row stays NaN; a row no part saw stays 0 (its lse is +inf).
        std::fill(acc.begin(), acc.end(), lse_merge::is_nan(merged) ? std::numeric_limits<float>::quiet_NaN() : 0.0f);
        if (lse_merge::contributes(merged)) {
          for (int64_t k = 0; k < n; ++k) {
            const float l = row_lse[k * lp.strides[0]];
            if (lse_merge::contributes(l)) {
              const int64_t offset = k * op.strides[0] + seq * op.strides[1] + i * op.strides[2] + h * op.strides[3];
              accumulate(op.data, offset, op.dtype, lse_merge::part_weight(l, merged), acc.data(), d_v);
            }
          }
        }
        store_row(a.out.data, seq * a.out.strides[0] + i * a.out.strides[1] + h * a.out.strides[2], a.out.dtype,
                  acc.data(), d_v);
        lse[seq * a.lse.strides[0] + h * a.lse.strides[1] + i * a.lse.strides[2]] = merged;
      }
    }
  }
}

}  // namespace openmla::cpu
