#pragma once
// The device planner: one CTA chooses the line (line_choice.h) and computes the schedule of schedule.h
// from cache_seqlens with the same formulas as the host (host_planner.cpp), so both give the same plan
// bit for bit.

#include <cstdint>
#include <cub/block/block_scan.cuh>

#include "../../core/line_choice.h"
#include "../../core/schedule.h"
#include "../common/ptx.cuh"

namespace openmla::schedule {

inline constexpr int kPlannerThreads = 512;

// out[0] = 0 and out[i + 1] = value(0) + ... + value(i) for i < n, a chunk of kPlannerThreads at a time.
template <typename Out, typename Value>
__device__ void prefix_sum(int64_t n, Value value, Out* out) {
  using Scan = cub::BlockScan<int64_t, kPlannerThreads>;
  __shared__ typename Scan::TempStorage scan_storage;
  __shared__ int64_t carry;
  if (threadIdx.x == 0) {
    carry = 0;
    out[0] = 0;
  }
  __syncthreads();
  for (int64_t chunk = 0; chunk < n; chunk += kPlannerThreads) {
    const int64_t i = chunk + threadIdx.x;
    int64_t inclusive;
    int64_t chunk_total;
    Scan(scan_storage).InclusiveSum(i < n ? value(i) : int64_t{0}, inclusive, chunk_total);
    if (i < n) {
      out[i + 1] = static_cast<Out>(carry + inclusive);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      carry += chunk_total;
    }
    __syncthreads();
  }
}

// The tried lines and what the model says of each (line_choice.h), in shared memory.
struct LineSearch {
  LineChoice lines[kLineChoices];        // [kLineChoices]
  bool tried[kLineChoices];              // [kLineChoices]
  int64_t first_pair[kLineChoices + 1];  // [kLineChoices + 1] where each choice's (choice, part) pairs begin
  int32_t slowest[kLineChoices];         // [kLineChoices]
  int32_t pieces[kLineChoices];          // [kLineChoices]
};

// Measures every tried line from the tile prefix sums `tiles` ([b + 1], shared memory): thread c sets
// up choice c, then every thread takes its share of the (choice, part) pairs.
__device__ void cost_lines(const int64_t* tiles, int64_t batch, int64_t num_parts, int64_t charge, LineSearch& search) {
  bool has_tiles = true;
  for (int64_t i = threadIdx.x; i < batch; i += kPlannerThreads) {
    has_tiles = has_tiles && tiles[i + 1] > tiles[i];
  }
  const bool every_sequence_has_tiles = __syncthreads_and(has_tiles) != 0;
  const int64_t c = threadIdx.x;
  if (c < kLineChoices) {
    search.lines[c] = line_choice(c, batch, tiles[batch], num_parts, charge);
    search.tried[c] = choice_tried(c, batch, tiles[batch], num_parts, charge, every_sequence_has_tiles);
    const LineChoice& line = search.lines[c];
    search.first_pair[c + 1] = search.tried[c] ? parts_used(tiles[batch] + line.fixed * batch, line.len) : 0;
    search.slowest[c] = 0;
    search.pieces[c] = 0;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    search.first_pair[0] = 0;
    for (int64_t k = 0; k < kLineChoices; ++k) {
      search.first_pair[k + 1] += search.first_pair[k];
    }
  }
  __syncthreads();
  for (int64_t pair = threadIdx.x; pair < search.first_pair[kLineChoices]; pair += kPlannerThreads) {
    int64_t k = 0;
    while (pair >= search.first_pair[k + 1]) {
      ++k;
    }
    const LineChoice line = search.lines[k];
    const LinePrefix prefix{tiles, line.fixed};
    const Part part = make_part(prefix, batch, line.len, pair - search.first_pair[k], line.fixed);
    atomicMax(&search.slowest[k], saturated(part_cost(prefix, part, line.fixed, charge)));
    atomicAdd(&search.pieces[k], static_cast<int32_t>(part_pieces(part)));
  }
  __syncthreads();
}

// The line of least cost among those cost_lines measured (line_choice.h, better_line).
__device__ LineChoice best_line(const LineSearch& search) {
  const auto cost = [&](int64_t c) { return LineCost{search.slowest[c], search.pieces[c]}; };
  int64_t best = 0;
  for (int64_t c = 1; c < kLineChoices; ++c) {
    if (search.tried[c] && better_line(cost(c), cost(best), cost(0))) {
      best = c;
    }
  }
  return search.lines[best];
}

__global__ void __launch_bounds__(kPlannerThreads)
    planner_kernel(const int32_t* seqlens, int64_t seqlens_stride, int64_t batch, int64_t num_parts, int64_t charge,
                   void* buffer) {
  const Layout l = layout(batch, num_parts);
  char* base = static_cast<char*>(buffer);
  auto* prefix = reinterpret_cast<int64_t*>(base + l.prefix_offset);              // [b + 1]
  auto* parts = reinterpret_cast<int32_t*>(base + l.parts_offset);                // [num_parts, kPartFields]
  auto* split_offset = reinterpret_cast<int32_t*>(base + l.split_offset_offset);  // [b + 1]
  __shared__ int64_t tiles[kMaxSearchedBatch + 1];  // [b + 1] tile prefix sums, where the line is searched
  __shared__ LineSearch search;
  __shared__ LineChoice chosen;

  ptx::grid_dependency_wait();  // a decode launched before may still read the buffer
  const bool searched = line_searched(batch, num_parts);
  if (searched) {
    prefix_sum(
        batch, [&](int64_t i) { return num_tiles(seqlens[i * seqlens_stride]); }, tiles);
    cost_lines(tiles, batch, num_parts, charge, search);
  }
  if (threadIdx.x == 0) {
    // Without a search, the first choice; its length follows from the prefix sums below.
    chosen = searched ? best_line(search) : LineChoice{charge, 0};
  }
  __syncthreads();
  const int64_t fixed = chosen.fixed;
  prefix_sum(
      batch, [&](int64_t i) { return seq_cost(seqlens[i * seqlens_stride], fixed); }, prefix);
  const int64_t len = searched ? chosen.len : part_length(prefix[batch], num_parts);
  if (threadIdx.x == 0) {
    store_header(reinterpret_cast<int32_t*>(base), batch, num_parts, fixed, len);
  }
  for (int64_t part = threadIdx.x; part < num_parts; part += kPlannerThreads) {
    store_part(parts, part, make_part(prefix, batch, len, part, fixed));
  }
  prefix_sum(
      batch, [&](int64_t i) { return static_cast<int64_t>(num_splits(prefix, i, len, fixed)); }, split_offset);
}

}  // namespace openmla::schedule
