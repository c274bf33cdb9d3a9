#pragma once
// The split-KV schedule of one decoding step. It depends only on the lengths and the shapes, so it is
// made once per step and reused by every layer.
//
// What a plan is tied to: its batch, its device, its num_parts and the number of 64-key tiles of each
// sequence's length it was made from. decode accepts it iff, for every sequence, the given length has
// as many tiles as the plan holds (so a plan made for the same lengths is always accepted, and a length
// that moves within its last tile is harmless: the kernels stop at the real length). A plan serves any
// s_q, h_q, h_kv, page size, d_v, cache format and kernel: its config's s_q, h_q, h_kv, page_size,
// cache_format and kernel only balance it (the default num_parts, the cost it charges each piece of a
// sequence). The CPU backend checks the plan buffer against the lengths before anything runs; a GPU
// checks it as it decodes (openmla/decode.h: StatusCode::stale_plan and bad_plan).

#include <cstdint>

#include "openmla/cache_format.h"
#include "openmla/kernel.h"
#include "openmla/tensor.h"

namespace openmla {

// Limits of a PlanConfig and of a decode; plan_buffer_size, workspace_size, plan and decode throw
// openmla::Error past them (and on any size that would not fit in int64).
inline constexpr int64_t kMaxBatch = int64_t{1} << 27;  // b
inline constexpr int64_t kMaxParts = int64_t{1} << 24;  // num_parts
inline constexpr int64_t kMaxDim = INT32_MAX;           // s_q, h_q, h_kv, page_size, d_v and s_q * h_q

struct PlanConfig {
  int64_t batch = 0;       // b; 0 is an empty step: plan and decode return at once
  int64_t s_q = 1;         // query tokens per sequence
  int64_t h_q = 0;         // query heads
  int64_t h_kv = 1;        // KV heads; h_q % h_kv == 0
  int64_t page_size = 64;  // tokens per cache page
  Device device{};         // where decode runs: the CPU backend or one CUDA device
  int64_t num_parts = 0;   // work parts (CTAs per head tile, CPU tasks); 0 picks one for the device
  // The kernel the plan is balanced for: automatic (decode's automatic choice for these shapes; on a
  // CUDA device OPENMLA_FORCE_PORTABLE=1 makes it portable), or the one a decode will name in
  // DecodeArgs::kernel: portable or sm90 on a CUDA device (sm90 where it serves this config), cpu on
  // the CPU.
  Kernel kernel = Kernel::automatic;
  // The cache format of the decodes it serves: on the Hopper kernel a piece of an FP8 decode of at
  // most 16 query rows per KV head costs more tiles than a 16-bit one (its tiles take about half the
  // time), so the plan charges it more.
  CacheFormat cache_format = CacheFormat::plain;
};

struct Plan {
  PlanConfig config;  // num_parts (> 0) and kernel (never automatic) resolved
  Buffer buffer;      // the schedule, in memory of config.device
};

// Bytes of plan buffer that `plan` needs for this configuration.
int64_t plan_buffer_size(const PlanConfig& config);

// Computes the schedule from cache_seqlens ([b] int32, on config.device) into `buffer`. On a CUDA
// device it is a kernel on `stream` (a cudaStream_t; nullptr is the default stream): no host
// synchronization, so it can be captured in a CUDA graph. On the CPU `stream` is ignored.
Plan plan(const PlanConfig& config, const TensorView& cache_seqlens, const Buffer& buffer, void* stream = nullptr);

// The configuration with num_parts and kernel resolved, as `plan` will use it.
PlanConfig resolve_plan_config(const PlanConfig& config);

}  // namespace openmla
