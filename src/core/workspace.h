#pragma once
// The decode workspace, shared by every backend:
//   int32 status                                   first offence (status.h), in a kStatusBytes slot
//   fp32  partial_lse[max_splits, s_q, h_q]        natural-log LSE of each split; -inf: no key seen
//   fp32  partial_out[max_splits, s_q, h_q, d_v]   each split's normalized output
// max_splits = b + num_parts - 1 (schedule.h).

#include <cstdint>

#include "host_device.h"

namespace openmla::workspace {

// What the workspace's base address must be a multiple of; each array in it starts at such a multiple.
inline constexpr int64_t kAlignment = 256;
inline constexpr int64_t kStatusBytes = kAlignment;  // the status word's slot (status.h)

OPENMLA_HD int64_t align_up(int64_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

struct Layout {
  int64_t lse_offset;
  int64_t out_offset;
  int64_t bytes;
};

OPENMLA_HD Layout layout(int64_t max_splits, int64_t s_q, int64_t h_q, int64_t d_v) {
  const int64_t rows = max_splits * s_q * h_q;
  Layout l{};
  l.lse_offset = kStatusBytes;
  l.out_offset = l.lse_offset + align_up(rows * 4);
  l.bytes = l.out_offset + rows * d_v * 4;
  return l;
}

}  // namespace openmla::workspace
