#pragma once
// The device planner: one CTA computes the schedule of schedule.h from cache_seqlens with the same
// formulas as the host (host_planner.cpp), so both give the same plan bit for bit.

#include <cub/block/block_scan.cuh>

#include <cstdint>

#include "../common/ptx.cuh"
#include "schedule.h"

namespace openmla::schedule {

inline constexpr int kPlannerThreads = 256;

__global__ void __launch_bounds__(kPlannerThreads)
    planner_kernel(const int32_t* seqlens, int64_t seqlens_stride, int64_t batch, int64_t num_parts,
                   void* buffer) {
  using Scan = cub::BlockScan<int64_t, kPlannerThreads>;
  __shared__ typename Scan::TempStorage scan_storage;
  __shared__ int64_t carry;
  const Layout l = layout(batch, num_parts);
  char* base = static_cast<char*>(buffer);
  auto* prefix = reinterpret_cast<int64_t*>(base + l.prefix_offset);                  // [b + 1]
  auto* parts = reinterpret_cast<int32_t*>(base + l.parts_offset);                    // [num_parts, 5]
  auto* split_offset = reinterpret_cast<int32_t*>(base + l.split_offset_offset);      // [b + 1]

  ptx::grid_dependency_wait();
  // prefix[i + 1] = prefix[i] + seq_cost(seqlens[i]), a chunk of kPlannerThreads at a time.
  if (threadIdx.x == 0) {
    carry = 0;
    prefix[0] = 0;
  }
  __syncthreads();
  for (int64_t chunk = 0; chunk < batch; chunk += kPlannerThreads) {
    const int64_t i = chunk + threadIdx.x;
    const int64_t cost = i < batch ? seq_cost(seqlens[i * seqlens_stride]) : 0;
    int64_t inclusive;
    int64_t chunk_total;
    Scan(scan_storage).InclusiveSum(cost, inclusive, chunk_total);
    if (i < batch) {
      prefix[i + 1] = carry + inclusive;
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      carry += chunk_total;
    }
    __syncthreads();
  }

  for (int64_t part = threadIdx.x; part < num_parts; part += kPlannerThreads) {
    store_part(parts, part, make_part(prefix, batch, num_parts, part));
  }

  const int64_t len = part_length(prefix[batch], num_parts);
  if (threadIdx.x == 0) {
    carry = 0;
    split_offset[0] = 0;
  }
  __syncthreads();
  for (int64_t chunk = 0; chunk < batch; chunk += kPlannerThreads) {
    const int64_t i = chunk + threadIdx.x;
    const int64_t splits = i < batch ? num_splits(prefix, i, len) : 0;
    int64_t inclusive;
    int64_t chunk_total;
    Scan(scan_storage).InclusiveSum(splits, inclusive, chunk_total);
    if (i < batch) {
      split_offset[i + 1] = static_cast<int32_t>(carry + inclusive);
    }
    __syncthreads();
    if (threadIdx.x == 0) {
      carry += chunk_total;
    }
    __syncthreads();
  }
  ptx::launch_dependents();
}

}  // namespace openmla::schedule
