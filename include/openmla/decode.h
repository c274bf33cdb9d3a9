#pragma once
// MLA decode: out = softmax(scale * q k^T) v over a paged latent cache whose first d_v columns are v.

#include <cstdint>
#include <optional>

#include "openmla/cache_format.h"
#include "openmla/kernel.h"
#include "openmla/plan.h"
#include "openmla/tensor.h"

namespace openmla {

// Every view may have a null data pointer when one of its dimensions is 0 (b = 0 is an empty step:
// decode checks the arguments and returns). out, lse and the workspace must not share memory with an
// input or with each other, and out and lse must give each of their elements its own memory.
struct DecodeArgs {
  TensorView q;        // [b, s_q, h_q, d_qk] bf16 | fp16 (| fp32 on the CPU), last dim contiguous
  TensorView k_cache;  // [num_blocks, page_size, h_kv, d_qk] as cache_format says, last dim contiguous
  CacheFormat cache_format = CacheFormat::plain;
  TensorView k_scale;                  // [1] fp32 on the decode device with fp8_per_tensor (read by the device,
                                       // so a captured graph replays with a new value); empty (rank 0) otherwise
  TensorView block_table;              // [b, max_blocks_per_seq] int32
  TensorView cache_seqlens;            // [b] int32
  int64_t d_v = 512;                   // v = k_cache[..., :d_v]
  std::optional<float> softmax_scale;  // default 1 / sqrt(d_qk)
  bool causal = false;                 // row i of s_q sees keys 0 .. s_k - s_q + i
  const Plan* plan = nullptr;          // made for these cache_seqlens on this device (openmla/plan.h)
  Buffer workspace;        // workspace_size(config, d_v) bytes, kWorkspaceAlignment-aligned, on the decode device
  TensorView out;          // [b, s_q, h_q, d_v] same dtype as q, last dim contiguous
  TensorView lse;          // [b, h_q, s_q] fp32, natural log; +inf for a row that sees no key
  void* stream = nullptr;  // cudaStream_t; ignored by the CPU backend
  // Which kernel runs: automatic (on a CUDA device the environment variable OPENMLA_FORCE_PORTABLE=1,
  // read once per process, makes it portable), or one named kernel, which must serve the call (else
  // decode throws). The choice is this field's alone: a plan made for another kernel still serves, at
  // that kernel's balance (PlanConfig::kernel).
  Kernel kernel = Kernel::automatic;
  // On a CUDA device decode asks the CUDA runtime, per call, whether each pointer is memory of the
  // views' device (cudaPointerGetAttributes, 8 queries, 9 with k_scale). A caller whose pointers carry that guarantee
  // already (a framework's device tensors; the Python binding's DLPack CUDA arrays) sets this to skip
  // those queries; every other check stays. Memory elsewhere is then not reported: the kernel faults.
  bool skip_pointer_queries = false;
};

// Bytes of workspace that decode needs: split partials and the device status record. `config` describes
// the decode (its batch, s_q and h_q) with the plan's num_parts; plan->config itself serves when the
// plan was made with the decode's s_q and h_q.
int64_t workspace_size(const PlanConfig& config, int64_t d_v);

// What the workspace's address must be a multiple of.
inline constexpr int64_t kWorkspaceAlignment = 256;

// Checks every argument on the host (throwing openmla::Error before anything is written), then runs.
void decode(const DecodeArgs& args);

// The kernel decode(args) runs (never automatic), after the same checks (throwing the same errors);
// runs nothing.
Kernel selected_kernel(const DecodeArgs& args);

// Values that live on the GPU (cache_seqlens, block_table, the plan buffer) are checked by the device
// as it goes. A sequence that fails gets NaN in out and lse and the first offence is recorded in the
// workspace. No content of the plan buffer makes a kernel read or write out of bounds.
enum class StatusCode : int32_t {
  ok = 0,
  negative_seqlen = 1,    // cache_seqlens[batch] < 0
  too_few_pages = 2,      // cache_seqlens[batch] needs more pages than block_table holds
  page_out_of_range = 3,  // a used block_table entry outside [0, num_blocks)
  stale_plan = 4,         // the plan was made for a length of sequence `batch` with another tile count
  bad_plan = 5,           // the plan buffer is not what openmla::plan wrote for this batch: batch -1
                          // when the plan as a whole is wrong (its header; then every row is NaN)
  slot_out_of_range = 6,  // write_cache (openmla/cache.h): slot_mapping[batch] >= num_blocks * page_size
};

struct DecodeStatus {
  StatusCode code = StatusCode::ok;
  // The lowest sequence index with an offence; -1 when ok or for the whole plan. For write_cache's
  // status buffer: the lowest token index with an out-of-range slot.
  int64_t batch = -1;
};

// Reads the status of the last decode into `workspace` (or the status buffer of write_cache, its one
// word); synchronizes `stream` first.
DecodeStatus read_status(const Buffer& workspace, void* stream = nullptr);

// Throws openmla::Error describing the status if it is not ok.
void check_status(const DecodeStatus& status);

}  // namespace openmla
