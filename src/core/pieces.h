#pragma once
// The walk from a plan part to the sequence pieces it computes: one function for the CPU backend and
// every kernel.
//
// No content of a plan buffer makes the walk, or what it hands out, reach outside the plan buffer,
// cache_seqlens or the workspace. The header is checked first (schedule.h); then every field is checked
// before it is used, against the schedule that the plan's own prefix sums imply, so a field that passes
// is exactly what openmla::plan writes for those sums. A piece whose fields disagree gets
// status::kBadPlan, a length whose tile count is not the plan's status::kStalePlan, and a length the
// block table cannot hold the status of that offence; such a piece holds no key and its rows become NaN.
// The CPU backend checks the whole plan before it walks (host_planner.h), so there every piece is ok.

#include <cstdint>

#include "host_device.h"
#include "schedule.h"
#include "status.h"

namespace openmla::schedule {

// One sequence piece: keys [key_begin, key_end) of sequence `seq`.
struct Piece {
  int seq;
  int key_begin;
  int key_end;
  int status;    // status::kOk, or the offence found before any load (then the piece holds no key)
  int64_t slot;  // partial slot in the workspace; -1: write out/lse directly
};

// What a walk reads besides the plan.
struct Lengths {
  const int32_t* seqlens;  // [b] cache_seqlens
  int64_t stride;          // of seqlens, in elements
  int64_t page_size;
  int64_t max_blocks;  // block-table row length: a length may use at most this many pages
};

// The most key tiles one sequence can have (a length of INT32_MAX).
inline constexpr int64_t kMaxTiles = (int64_t{INT32_MAX} + kTileN - 1) / kTileN;

// The plan's cost line: total units and the part length. ok when total is one that batch sequences
// can cost and the stored part length is in range for it, which also keeps every product of the walk
// far from overflow. Read it once header_matches holds (so the plan's fixed units are in range).
struct Line {
  bool ok;
  int64_t total;
  int64_t len;
};

OPENMLA_HD Line line_of(const View& v, int64_t batch, int64_t num_parts) {
  const int64_t total = v.prefix[batch];
  const int64_t fixed = fixed_cost(v);
  const int64_t len = stored_len(v);
  const bool ok =
      total >= min_units(fixed) * batch && total <= batch * (fixed + kMaxTiles) && len_in_range(len, total, num_parts);
  return Line{ok, total, ok ? len : 1};
}

// Sequence seq as the plan holds it: its units [lo, hi) on the line, the key tiles the plan was made
// for, and its splits [first_split, first_split + splits) in the workspace. ok when the prefix sums
// and split offsets agree with each other, the line and the workspace's max_splits.
struct SeqPlan {
  bool ok;
  int64_t lo;
  int64_t hi;
  int64_t tiles;
  int32_t first_split;
  int32_t splits;
};

OPENMLA_HD SeqPlan seq_plan(const View& v, int64_t batch, int64_t num_parts, const Line& line, int64_t seq) {
  const int64_t begin = v.prefix[seq];
  const int64_t end = v.prefix[seq + 1];
  const int64_t split_begin = v.split_offset[seq];
  const int64_t split_end = v.split_offset[seq + 1];
  const int64_t fixed = fixed_cost(v);
  SeqPlan s{false, 0, 0, 0, 0, 0};
  if (!line.ok || begin < 0 || begin > line.total || end < begin + min_units(fixed) ||
      end > begin + fixed + kMaxTiles || end > line.total) {
    return s;
  }
  s.lo = units_lo(begin, end, fixed);
  s.hi = units_hi(begin, end, fixed);
  const int64_t splits = splits_of_units(s.lo, s.hi, line.len);
  if (split_begin < 0 || split_end - split_begin != splits || split_end > max_splits(batch, num_parts)) {
    return s;
  }
  s.ok = true;
  s.tiles = end - begin - fixed;
  s.first_split = static_cast<int32_t>(split_begin);
  s.splits = static_cast<int32_t>(splits);
  return s;
}

// The sequences part p walks: first, first + stride, ... up to last. status is kBadPlan when the plan
// as a whole cannot be trusted (recorded with status::kNoSequence):
// - a wrong header: the walk visits sequences p, p + num_parts, ..., each a piece with no key and
//   status kBadPlan, so that the parts together make every row NaN;
// - a cost line no batch of lengths gives: the walk goes on, and every piece reports its sequence;
// - a part whose sequence range is not the one its span of the line meets (the sequence before
//   `first` must end, the one after `last` begin, outside the span; an empty part must be one): the
//   walk visits nothing.
struct Walk {
  int32_t first;
  int32_t last;
  int32_t stride;
  int32_t status;
  bool header_ok;
  Part part;
  Line line;
  int64_t p;
  int64_t batch;
  int64_t num_parts;
};

// Whether prefix[i] and prefix[i + 1] lie on the line, so that arithmetic on them cannot overflow.
OPENMLA_HD bool on_line(const View& v, const Line& line, int64_t i) {
  return v.prefix[i] >= 0 && v.prefix[i] <= line.total && v.prefix[i + 1] >= 0 && v.prefix[i + 1] <= line.total;
}

// Whether the stored part's sequence range is the one its span [a, e) of the line meets: the sequence
// before `first` ends and the one after `last` begins outside the span; for an empty part (stored as
// make_part stores one), the sequence holding unit a and the next one both miss it.
OPENMLA_HD bool part_range_matches(const View& v, const Walk& w) {
  const Part& part = w.part;
  const int64_t a = w.p * w.line.len;
  const int64_t e = a + w.line.len < w.line.total ? a + w.line.len : w.line.total;
  const int64_t fixed = fixed_cost(v);
  const auto ends_by_a = [&](int64_t i) { return on_line(v, w.line, i) && seq_hi(v.prefix, i, fixed) <= a; };
  const auto starts_from_e = [&](int64_t i) { return on_line(v, w.line, i) && seq_lo(v.prefix, i, fixed) >= e; };
  if (part.first_seq > part.last_seq) {
    const bool stored_empty = part.first_seq == 1 && part.last_seq == 0 && part.first_tile_begin == 0 &&
                              part.last_tile_end == 0 && part.first_split == 0;
    if (!stored_empty || a >= e) {
      return stored_empty;
    }
    const int64_t j = locate(v.prefix, w.batch, a);
    return (ends_by_a(j) || starts_from_e(j)) && (j + 1 == w.batch || starts_from_e(j + 1));
  }
  return (part.first_seq == 0 || ends_by_a(part.first_seq - 1)) &&
         (part.last_seq == w.batch - 1 || starts_from_e(part.last_seq + 1));
}

// part_fields: [kPartFields], part p's fields (v.parts + p * kPartFields, or a copy of them).
OPENMLA_HD Walk walk_part(const View& v, int64_t batch, int64_t num_parts, int64_t p, const int32_t* part_fields) {
  Walk w{};
  w.p = p;
  w.batch = batch;
  w.num_parts = num_parts;
  w.header_ok = header_matches(v, batch, num_parts);
  if (!w.header_ok) {
    w.first = static_cast<int32_t>(p);
    w.last = static_cast<int32_t>(batch - 1);
    w.stride = static_cast<int32_t>(num_parts);
    w.status = status::kBadPlan;
    return w;
  }
  w.part = load_part(part_fields, 0);
  w.line = line_of(v, batch, num_parts);
  w.stride = 1;
  w.first = w.part.first_seq;
  w.last = w.part.last_seq;
  const bool in_batch = w.first > w.last || (w.first >= 0 && w.last < batch);
  const bool range_ok = in_batch && (!w.line.ok || part_range_matches(v, w));
  if (!range_ok) {
    w.first = 1;
    w.last = 0;
  }
  w.status = range_ok && w.line.ok ? status::kOk : status::kBadPlan;
  return w;
}

OPENMLA_HD Walk walk_part(const View& v, int64_t batch, int64_t num_parts, int64_t p) {
  return walk_part(v, batch, num_parts, p, v.parts + p * kPartFields);
}

// The piece of sequence seq (one the walk visits) that part w.p computes: the units where the part's
// span [p * len, p * len + len) meets the sequence's, as tiles, with the part's stored fields required
// to say the same.
OPENMLA_HD Piece piece_of(const View& v, const Walk& w, int32_t seq, const Lengths& lengths) {
  Piece piece{seq, 0, 0, status::kBadPlan, -1};
  if (!w.header_ok) {
    return piece;
  }
  const SeqPlan s = seq_plan(v, w.batch, w.num_parts, w.line, seq);
  if (!s.ok) {
    return piece;
  }
  const int64_t a = w.p * w.line.len;
  const int64_t e = a + w.line.len < w.line.total ? a + w.line.len : w.line.total;
  const int64_t from = a > s.lo ? a : s.lo;
  const int64_t to = e < s.hi ? e : s.hi;
  if (from >= to) {
    return piece;  // the part claims a sequence it does not meet
  }
  const int64_t tile_begin = s.tiles > 0 ? from - s.lo : 0;
  const int64_t tile_end = s.tiles > 0 ? to - s.lo : 0;
  const int64_t split = w.p - s.lo / w.line.len;  // in [0, s.splits) as the part meets the sequence
  const Part& part = w.part;
  const int64_t stored_begin = seq == part.first_seq ? part.first_tile_begin : 0;
  const int64_t stored_end = seq == part.last_seq ? part.last_tile_end : s.tiles;
  const int64_t stored_split = seq == part.first_seq ? part.first_split : 0;
  if (s.splits > 1) {
    piece.slot = s.first_split + split;
  }
  if (stored_begin != tile_begin || stored_end != tile_end || stored_split != split) {
    return piece;
  }
  const int32_t s_k = lengths.seqlens[seq * lengths.stride];
  if (s_k < 0) {
    piece.status = status::kNegativeSeqlen;
  } else if ((static_cast<int64_t>(s_k) + lengths.page_size - 1) / lengths.page_size > lengths.max_blocks) {
    piece.status = status::kTooFewPages;
  } else if (num_tiles(s_k) != s.tiles) {
    piece.status = status::kStalePlan;
  } else {
    piece.status = status::kOk;
    piece.key_begin = static_cast<int>(tile_begin * kTileN);
    const int64_t key_end = tile_end * kTileN;
    piece.key_end = static_cast<int>(key_end < s_k ? key_end : s_k);
  }
  return piece;
}

}  // namespace openmla::schedule
