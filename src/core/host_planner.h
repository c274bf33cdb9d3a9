#pragma once
// The schedule computed on the host: the CPU backend's planner, its check of a plan before decode, and
// the tests' reference for the device planner. Same formulas as the device (schedule.h), so the two
// agree bit for bit.

#include <cstdint>

#include "line_choice.h"

namespace openmla::schedule {

// The line the planner cuts these lengths on (line_choice.h). seqlens: [batch] int32 host memory;
// charge: what a piece costs the kernel besides its tiles, in [1, kMaxFixedCost].
LineChoice choose_line(const int32_t* seqlens, int64_t batch, int64_t num_parts, int64_t charge);

// Writes the plan of these lengths on the chosen line. seqlens: [batch] int32 host memory; buffer:
// layout(batch, num_parts).bytes host memory.
void build_on_host(const int32_t* seqlens, int64_t batch, int64_t num_parts, int64_t charge, void* buffer);

// How a plan buffer compares with the plan of given lengths.
struct Comparison {
  enum Kind {
    kSame,     // the buffer holds the plan of these lengths' tile counts
    kStale,    // it holds a plan of openmla::plan made for other tile counts
    kForeign,  // it holds something openmla::plan does not write for this batch and num_parts (on any
               // line it can choose)
  };
  Kind kind;
  int64_t seq;         // kStale: the first sequence whose tile count differs
  int64_t plan_tiles;  // kStale: the tile count the plan holds for it
};

// seqlens: [batch] int32 host memory (non-negative); buffer: layout(batch, num_parts).bytes host memory.
// Reads nothing outside either, whatever the buffer holds.
Comparison compare_on_host(const void* buffer, const int32_t* seqlens, int64_t batch, int64_t num_parts);

}  // namespace openmla::schedule
