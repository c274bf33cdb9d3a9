#pragma once
// Which line a plan is cut on: the planner tries a few lines and keeps the one whose slowest part is
// fastest, by a model in which every piece costs the kernel's charge (schedule.h) besides its tiles,
// among those with no more pieces in all (splits) than the first.
//
// The first choice is the line charged per sequence with the shortest part length: each sequence
// carries `charge` overhead units, so that the cuts leave room for the pieces' costs. It serves uneven
// lengths, but on a batch of equal lengths it gives some part the overhead of the sequence it begins
// and another the cost of a piece the line never charged (32 sequences of 16 tiles over 132 parts at a
// charge of 4: pieces of 1, 5, 5 and 5 tiles). So the planner also tries lines with no overhead units
// (when every sequence has a tile), where such a batch splits into equal pieces (4, 4, 4 and 4), and
// part lengths a little past the shortest on both, where cuts can meet sequence ends (64 sequences of
// 64 tiles over 66 parts: one sequence per part). A line of more pieces is never taken: where the
// stream is bound by memory, not by the slowest part, each more piece costs its partial rows and their
// combine and buys nothing (8 sequences of 32 tiles over 132 parts: pieces of 2 tiles measured slower
// than the charged line's 3 on the H200). Ties keep the earlier choice, the first above all.
// The same integers on the host (host_planner.cpp) and the device (cuda/plan/planner.cuh) make the same
// choice.

#include <climits>
#include <cstdint>

#include "host_device.h"
#include "schedule.h"

namespace openmla::schedule {

inline constexpr int64_t kLengthsTried = 4;                 // part lengths per overhead: the shortest and 3 more
inline constexpr int64_t kLineChoices = 2 * kLengthsTried;  // charged lines first, then lines with no overhead
inline constexpr int64_t kMaxSearchedParts = 1024;          // more parts than this: the first choice only
inline constexpr int64_t kMaxSearchedBatch = 2048;          // more sequences than this: the first choice only

// The cost prefix sums of a line with `fixed` units per sequence, from the tile prefix sums.
struct LinePrefix {
  const int64_t* tiles;  // [b + 1] tile prefix sums
  int64_t fixed;
  OPENMLA_HD int64_t operator[](int64_t i) const { return tiles[i] + fixed * i; }
};

struct LineChoice {
  int64_t fixed;  // units per sequence
  int64_t len;    // units per part
};

// Choice c of a batch of `total_tiles` tiles cut into num_parts parts for a kernel of this charge.
OPENMLA_HD LineChoice line_choice(int64_t c, int64_t batch, int64_t total_tiles, int64_t num_parts, int64_t charge) {
  const int64_t fixed = c < kLengthsTried ? charge : 0;
  const int64_t shortest = part_length(total_tiles + fixed * batch, num_parts);  // 0 for an empty batch
  return LineChoice{fixed, (shortest > 0 ? shortest : 1) + c % kLengthsTried};
}

// Whether the planner searches at all: more than the first choice.
OPENMLA_HD bool line_searched(int64_t batch, int64_t num_parts) {
  return batch >= 1 && batch <= kMaxSearchedBatch && num_parts <= kMaxSearchedParts;
}

// Whether the planner tries choice c: the first always; the others where it searches, with a length in
// range, and no overhead units only when every sequence has a tile.
OPENMLA_HD bool choice_tried(int64_t c, int64_t batch, int64_t total_tiles, int64_t num_parts, int64_t charge,
                             bool every_sequence_has_tiles) {
  if (c == 0) {
    return true;
  }
  if (!line_searched(batch, num_parts) || (c >= kLengthsTried && !every_sequence_has_tiles)) {
    return false;
  }
  const LineChoice line = line_choice(c, batch, total_tiles, num_parts, charge);
  return len_in_range(line.len, total_tiles + line.fixed * batch, num_parts);
}

// The parts of a line that are not empty: those that begin before its end.
OPENMLA_HD int64_t parts_used(int64_t total, int64_t len) { return (total + len - 1) / len; }

// The pieces of a part.
OPENMLA_HD int64_t part_pieces(const Part& part) {
  return part.first_seq > part.last_seq ? 0 : part.last_seq - part.first_seq + 1;
}

// The model's time of a part, in tiles: its tiles, and the charge for each of its pieces.
template <typename Prefix>
OPENMLA_HD int64_t part_cost(const Prefix& prefix, const Part& part, int64_t fixed, int64_t charge) {
  if (part.first_seq > part.last_seq) {
    return 0;
  }
  const int64_t first = part.first_seq;
  const int64_t last = part.last_seq;
  int64_t tiles = part.last_tile_end - part.first_tile_begin;
  if (first < last) {
    const int64_t first_tiles = prefix[first + 1] - prefix[first] - fixed;
    const int64_t middle_tiles = prefix[last] - prefix[first + 1] - fixed * (last - first - 1);
    tiles = first_tiles - part.first_tile_begin + middle_tiles + part.last_tile_end;
  }
  return tiles + charge * part_pieces(part);
}

// What the model says of a tried line: its slowest part (saturated at INT32_MAX: no part of a plan
// worth comparing comes near it, and both planners saturate alike) and its pieces in all.
struct LineCost {
  int64_t slowest;
  int64_t pieces;
};

OPENMLA_HD int32_t saturated(int64_t cost) { return cost < INT32_MAX ? static_cast<int32_t>(cost) : INT32_MAX; }

// Whether a tried line is better than the best so far: no more pieces than the first choice's, and a
// faster slowest part.
OPENMLA_HD bool better_line(const LineCost& line, const LineCost& best, const LineCost& first) {
  return line.pieces <= first.pieces && line.slowest < best.slowest;
}

}  // namespace openmla::schedule
