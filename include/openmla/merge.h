#pragma once
// Merge: n partial attention results of the same queries over disjoint key sets (split-KV chunks,
// context-parallel ranks) -> the exact attention over the union of the key sets.

#include "openmla/tensor.h"

namespace openmla {

// For each row (sequence, query token, head), with l_k = lse_parts[k, ...] and o_k its out_parts row:
//   lse = log(sum_k exp(l_k)),  out = sum_k exp(l_k - lse) * o_k   (fp32 math, out rounded once)
// - a part with l_k = +inf (decode's "saw no key") or -inf (no weight) contributes nothing; its out
//   is not read and may hold anything;
// - a row to which no part contributes gets out = 0, lse = +inf;
// - NaN in any l_k makes the row's out and lse NaN; NaN in the out of a contributing part reaches
//   the same elements of out.
// The stacked layout is the one an all-gather produces; every stride is free except that the last
// dim of out_parts and out is contiguous, so slices and transposes need no copy.
struct MergeArgs {
  TensorView out_parts;    // [n, b, s_q, h_q, d_v] bf16 | fp16 | fp32, n >= 1
  TensorView lse_parts;    // [n, b, h_q, s_q] fp32, natural log
  TensorView out;          // [b, s_q, h_q, d_v] bf16 | fp16 | fp32 (any of the three)
  TensorView lse;          // [b, h_q, s_q] fp32
  void* stream = nullptr;  // cudaStream_t; ignored by the CPU backend
};

// Checks every argument on the host (throwing openmla::Error before anything is written; out and
// lse must not overlap each other, themselves or an input), then writes out and lse. On a CUDA
// device it is one kernel on `stream`: no allocation, no synchronization (CUDA-graph safe).
void merge(const MergeArgs& args);

}  // namespace openmla
