#pragma once
// The decode workspace, shared by every backend:
//   int32 record[record_words]                     the status record of the last decode (status.h)
//   fp32  partial_lse[max_splits, s_q, h_q]        natural-log LSE of each split; -inf: no key seen
//   fp32  partial_out[max_splits, s_q, h_q, d_v]   each split's normalized output
// max_splits = b + num_parts - 1 (schedule.h).

#include <cstdint>

#include "host_device.h"
#include "status.h"

namespace openmla::workspace {

// What the workspace's base address must be a multiple of; each array in it starts at such a multiple.
inline constexpr int64_t kAlignment = 256;

// The fewest query rows a decode kernel's CTA computes (the portable kernel's smallest m-tile).
inline constexpr int64_t kMinTileRows = 16;

OPENMLA_HD int64_t align_up(int64_t bytes) { return (bytes + kAlignment - 1) / kAlignment * kAlignment; }

// Words of the status record: its header and one word per CTA of the largest grid a decode of this
// shape launches. Every grid is (m_tiles, num_parts, h_kv) with m_tiles <= ceil(rows / kMinTileRows)
// and rows = s_q * h_q / h_kv, so m_tiles * h_kv <= s_q * h_q / kMinTileRows + h_kv, at most the bound
// below (h_kv <= h_q); the CPU backend writes one word.
OPENMLA_HD int64_t record_words(int64_t num_parts, int64_t s_q, int64_t h_q) {
  return status::kRecordHeaderWords + num_parts * ((s_q * h_q + kMinTileRows - 1) / kMinTileRows + h_q);
}

struct Layout {
  int64_t lse_offset;
  int64_t out_offset;
  int64_t bytes;
};

OPENMLA_HD Layout layout(int64_t num_parts, int64_t max_splits, int64_t s_q, int64_t h_q, int64_t d_v) {
  const int64_t rows = max_splits * s_q * h_q;
  Layout l{};
  // An empty step (no split, b = 0) runs no kernel: its status is one word.
  l.lse_offset = align_up(max_splits == 0 ? 4 : record_words(num_parts, s_q, h_q) * 4);
  l.out_offset = l.lse_offset + align_up(rows * 4);
  l.bytes = l.out_offset + rows * d_v * 4;
  return l;
}

}  // namespace openmla::workspace
