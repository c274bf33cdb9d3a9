#pragma once
// The split-KV schedule of one decoding step. It depends only on the lengths and the shapes, so it is
// made once per step and reused by every layer.

#include <cstdint>

#include "openmla/tensor.h"

namespace openmla {

struct PlanConfig {
  int64_t batch = 0;      // b
  int64_t s_q = 1;        // query tokens per sequence
  int64_t h_q = 0;        // query heads
  int64_t h_kv = 1;       // KV heads; h_q % h_kv == 0
  int64_t page_size = 64; // tokens per cache page
  Device device{};        // where decode runs: the CPU backend or one CUDA device
  int64_t num_parts = 0;  // work parts (CTAs per head tile, CPU tasks); 0 picks one for the device
};

struct Plan {
  PlanConfig config;      // num_parts resolved (> 0)
  Buffer buffer;          // the schedule, in memory of config.device
};

// Bytes of plan buffer that `plan` needs for this configuration.
int64_t plan_buffer_size(const PlanConfig& config);

// Computes the schedule from cache_seqlens ([b] int32, on config.device) into `buffer`. On a CUDA
// device it is a kernel on `stream` (a cudaStream_t; nullptr is the default stream): no host
// synchronization, so it can be captured in a CUDA graph. On the CPU `stream` is ignored.
Plan plan(const PlanConfig& config, const TensorView& cache_seqlens, const Buffer& buffer,
          void* stream = nullptr);

// The configuration with num_parts resolved, as `plan` will use it.
PlanConfig resolve_plan_config(const PlanConfig& config);

}  // namespace openmla
