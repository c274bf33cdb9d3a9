#pragma once
// The device planner: one CTA computes the schedule of schedule.h from cache_seqlens with the same
// formulas as the host (host_planner.cpp), so both give the same plan bit for bit.

#include <cstdint>
#include <cub/block/block_scan.cuh>

#include "../../core/schedule.h"
#include "../common/ptx.cuh"

namespace openmla::schedule {

inline constexpr int kPlannerThreads = 256;

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

__global__ void __launch_bounds__(kPlannerThreads)
    planner_kernel(const int32_t* seqlens, int64_t seqlens_stride, int64_t batch, int64_t num_parts, int64_t fixed,
                   void* buffer) {
  const Layout l = layout(batch, num_parts);
  char* base = static_cast<char*>(buffer);
  auto* prefix = reinterpret_cast<int64_t*>(base + l.prefix_offset);              // [b + 1]
  auto* parts = reinterpret_cast<int32_t*>(base + l.parts_offset);                // [num_parts, kPartFields]
  auto* split_offset = reinterpret_cast<int32_t*>(base + l.split_offset_offset);  // [b + 1]

  ptx::grid_dependency_wait();  // a decode launched before may still read the buffer
  if (threadIdx.x == 0) {
    store_header(reinterpret_cast<int32_t*>(base), batch, num_parts, fixed);
  }
  prefix_sum(
      batch, [&](int64_t i) { return seq_cost(seqlens[i * seqlens_stride], fixed); }, prefix);
  for (int64_t part = threadIdx.x; part < num_parts; part += kPlannerThreads) {
    store_part(parts, part, make_part(prefix, batch, num_parts, part, fixed));
  }
  const int64_t len = part_length(prefix[batch], num_parts);
  prefix_sum(
      batch, [&](int64_t i) { return static_cast<int64_t>(num_splits(prefix, i, len, fixed)); }, split_offset);
}

}  // namespace openmla::schedule
