#pragma once
// The split-KV schedule, one algorithm for the host and the device.
//
// Every sequence is a run of cost units on one line: `fixed` units of overhead, then one unit per tile
// of kTileN keys. The line is cut into pieces of `len` units; part p takes [p*len, (p+1)*len), and the
// parts past the line's end are empty. A sequence is split where a cut falls inside its tiles, and each
// piece of it is one "split" whose partial result the combine merges by LSE. The plan's header holds
// fixed and len, which the planner chooses (line_choice.h).
// Every quantity below is a closed form of the cost prefix sums, so each part and each sequence can be
// computed independently (one device thread each) and the host and device agree bit for bit.

#include <cstdint>

#include "host_device.h"

namespace openmla::schedule {

inline constexpr int64_t kTileN = 64;  // keys per work unit; the kernels' key tile

// What a piece costs a kernel besides its tiles, in tiles (loading q, writing its rows, the walk): the
// planner's "charge", chosen where a plan is made for the kernel that will run it (the Hopper kernel's
// pieces cost more tiles than the portable kernel's: docs/hopper-kernel.md, "Where a decode's pieces
// lose time"), in [1, kMaxFixedCost].
inline constexpr int64_t kDefaultCharge = 2;  // the CPU backend's and the portable kernel's
// A line's fixed units per sequence are in [0, kMaxFixedCost]; 0 only when every sequence has a tile,
// so that each sequence has a unit.
inline constexpr int64_t kMaxFixedCost = 16;

// One part's work: sequences first_seq..last_seq (inclusive); tiles [first_tile_begin, ...) of the first
// and [..., last_tile_end) of the last; first_split is the first sequence's split index. Empty when
// first_seq > last_seq.
struct Part {
  int32_t first_seq;
  int32_t last_seq;
  int32_t first_tile_begin;
  int32_t last_tile_end;
  int32_t first_split;
};
inline constexpr int kPartFields = 5;

// Plan buffer layout, in this order, each array 8-byte aligned:
//   int32 header[6]            kMagic, batch, num_parts: what the plan was made for; the line's fixed
//                              units per sequence; its part length len (int64, low word first)
//   int64 prefix[b + 1]        cost prefix sums: prefix[i] = sum of cost(j) for j < i
//   int32 parts[num_parts][kPartFields]  Part
//   int32 split_offset[b + 1]  exclusive prefix sum of splits per sequence
// A plan is tied to its batch, its num_parts and, through prefix, to the number of key tiles of each
// sequence's length; the kernels and the CPU backend check all three before trusting the rest.
struct Layout {
  int64_t prefix_offset;
  int64_t parts_offset;
  int64_t split_offset_offset;
  int64_t bytes;
};

// The header's first word: "omla" in memory order, a value neither zeros, a fill byte nor small
// integers give.
inline constexpr int32_t kMagic = 0x616c6d6f;
inline constexpr int kHeaderWords = 6;

// The most parts a plan may have (plan.h states it): with batch <= status::kMaxBatch, every int32
// field of the buffer (split counts included) and every offset into it fit.
inline constexpr int64_t kMaxParts = int64_t{1} << 24;

OPENMLA_HD int64_t align8(int64_t bytes) { return (bytes + 7) / 8 * 8; }

// With batch <= status::kMaxBatch and num_parts <= kMaxParts no size below overflows.
OPENMLA_HD Layout layout(int64_t batch, int64_t num_parts) {
  Layout l{};
  l.prefix_offset = align8(kHeaderWords * 4);
  l.parts_offset = l.prefix_offset + align8((batch + 1) * 8);
  l.split_offset_offset = l.parts_offset + align8(num_parts * kPartFields * 4);
  l.bytes = l.split_offset_offset + align8((batch + 1) * 4);
  return l;
}

// Negative lengths are bad input that the decode kernel reports; the schedule treats them as empty.
OPENMLA_HD int64_t num_tiles(int32_t seqlen) {
  return seqlen <= 0 ? 0 : (static_cast<int64_t>(seqlen) + kTileN - 1) / kTileN;
}

OPENMLA_HD int64_t seq_cost(int32_t seqlen, int64_t fixed) { return fixed + num_tiles(seqlen); }

// The fewest units a sequence has on a line of `fixed` units per sequence.
OPENMLA_HD int64_t min_units(int64_t fixed) { return fixed > 0 ? fixed : 1; }

OPENMLA_HD int64_t part_length(int64_t total, int64_t num_parts) { return (total + num_parts - 1) / num_parts; }

// Whether len is a part length a plan may hold for `total` units over num_parts parts: long enough that
// the parts cover the line, and at most twice the shortest, so that no part's span overflows.
OPENMLA_HD bool len_in_range(int64_t len, int64_t total, int64_t num_parts) {
  const int64_t shortest = part_length(total, num_parts);
  return len >= shortest && len <= 2 * shortest && len >= 1;
}

// The units that stand for a sequence whose costs span [begin, end) on the line: its tiles, or, when it
// has none, its first overhead unit (a zero-length sequence still has its rows written by exactly one
// part).
OPENMLA_HD int64_t units_lo(int64_t begin, int64_t end, int64_t fixed) {
  return end - begin > fixed ? begin + fixed : begin;
}
OPENMLA_HD int64_t units_hi(int64_t begin, int64_t end, int64_t fixed) { return end - begin > fixed ? end : begin + 1; }

// The functions below read the cost prefix sums through `prefix[i]`: the plan's array, or a
// LinePrefix while the planner compares lines.
template <typename Prefix>
OPENMLA_HD int64_t seq_lo(const Prefix& prefix, int64_t i, int64_t fixed) {
  return units_lo(prefix[i], prefix[i + 1], fixed);
}
template <typename Prefix>
OPENMLA_HD int64_t seq_hi(const Prefix& prefix, int64_t i, int64_t fixed) {
  return units_hi(prefix[i], prefix[i + 1], fixed);
}

// The parts that units [lo, hi) meet, when each part is len units long.
OPENMLA_HD int64_t splits_of_units(int64_t lo, int64_t hi, int64_t len) { return (hi - 1) / len - lo / len + 1; }

template <typename Prefix>
OPENMLA_HD int32_t num_splits(const Prefix& prefix, int64_t i, int64_t len, int64_t fixed) {
  return static_cast<int32_t>(splits_of_units(seq_lo(prefix, i, fixed), seq_hi(prefix, i, fixed), len));
}

// The sequence whose units contain position x: the largest i with prefix[i] <= x (0 <= x < total).
template <typename Prefix>
OPENMLA_HD int64_t locate(const Prefix& prefix, int64_t batch, int64_t x) {
  int64_t lo = 0;
  int64_t hi = batch - 1;
  while (lo < hi) {
    const int64_t mid = (lo + hi + 1) / 2;
    if (prefix[mid] <= x) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

// Part p of the line cut every len units.
template <typename Prefix>
OPENMLA_HD Part make_part(const Prefix& prefix, int64_t batch, int64_t len, int64_t p, int64_t fixed) {
  const int64_t total = prefix[batch];
  const int64_t a = p * len;
  const int64_t e = a + len < total ? a + len : total;
  Part part{1, 0, 0, 0, 0};
  if (a >= e) {
    return part;
  }
  int64_t first = locate(prefix, batch, a);
  if (seq_hi(prefix, first, fixed) <= a) {
    ++first;
  }
  int64_t last = locate(prefix, batch, e - 1);
  if (seq_lo(prefix, last, fixed) >= e) {
    --last;
  }
  if (first > last) {
    return part;
  }
  const int64_t first_lo = seq_lo(prefix, first, fixed);
  const int64_t last_lo = seq_lo(prefix, last, fixed);
  const int64_t last_hi = seq_hi(prefix, last, fixed);
  const bool first_has_tiles = prefix[first + 1] - prefix[first] > fixed;
  const bool last_has_tiles = prefix[last + 1] - prefix[last] > fixed;
  part.first_seq = static_cast<int32_t>(first);
  part.last_seq = static_cast<int32_t>(last);
  part.first_tile_begin = first_has_tiles ? static_cast<int32_t>((a > first_lo ? a : first_lo) - first_lo) : 0;
  part.last_tile_end = last_has_tiles ? static_cast<int32_t>((e < last_hi ? e : last_hi) - last_lo) : 0;
  part.first_split = static_cast<int32_t>(p - first_lo / len);
  return part;
}

// The plan as the kernels read it.
struct View {
  const int32_t* header;        // [kHeaderWords]
  const int64_t* prefix;        // [b + 1]
  const int32_t* parts;         // [num_parts, kPartFields]
  const int32_t* split_offset;  // [b + 1]
};

OPENMLA_HD View view(const void* buffer, int64_t batch, int64_t num_parts) {
  const Layout l = layout(batch, num_parts);
  const char* base = static_cast<const char*>(buffer);
  return View{reinterpret_cast<const int32_t*>(base), reinterpret_cast<const int64_t*>(base + l.prefix_offset),
              reinterpret_cast<const int32_t*>(base + l.parts_offset),
              reinterpret_cast<const int32_t*>(base + l.split_offset_offset)};
}

OPENMLA_HD void store_header(int32_t* header, int64_t batch, int64_t num_parts, int64_t fixed, int64_t len) {
  header[0] = kMagic;
  header[1] = static_cast<int32_t>(batch);
  header[2] = static_cast<int32_t>(num_parts);
  header[3] = static_cast<int32_t>(fixed);
  header[4] = static_cast<int32_t>(static_cast<uint32_t>(len));
  header[5] = static_cast<int32_t>(len >> 32);
}

// Whether the buffer's header says it is a plan of openmla::plan for this batch and num_parts, with
// fixed units in range (its len is checked against the line: pieces.h, line_of).
OPENMLA_HD bool header_matches(const View& v, int64_t batch, int64_t num_parts) {
  return v.header[0] == kMagic && v.header[1] == batch && v.header[2] == num_parts && v.header[3] >= 0 &&
         v.header[3] <= kMaxFixedCost;
}

// The line's fixed units per sequence; read it once header_matches holds.
OPENMLA_HD int64_t fixed_cost(const View& v) { return v.header[3]; }

// The line's part length as the header holds it (any value; line_of checks it).
OPENMLA_HD int64_t stored_len(const View& v) {
  return static_cast<int64_t>(static_cast<uint32_t>(v.header[4])) | (static_cast<int64_t>(v.header[5]) << 32);
}

OPENMLA_HD Part load_part(const int32_t* parts, int64_t p) {
  const int32_t* f = parts + p * kPartFields;
  return Part{f[0], f[1], f[2], f[3], f[4]};
}

OPENMLA_HD void store_part(int32_t* parts, int64_t p, const Part& part) {
  int32_t* f = parts + p * kPartFields;
  f[0] = part.first_seq;
  f[1] = part.last_seq;
  f[2] = part.first_tile_begin;
  f[3] = part.last_tile_end;
  f[4] = part.first_split;
}

// Upper bound on the total number of splits: each of the num_parts - 1 cuts adds at most one. An empty
// batch has none.
OPENMLA_HD int64_t max_splits(int64_t batch, int64_t num_parts) { return batch == 0 ? 0 : batch + num_parts - 1; }

}  // namespace openmla::schedule
