#pragma once
// One split of MLA attention on the CPU: the rows of one sequence over one range of its keys.

#include <cstdint>

#include "openmla/decode.h"

namespace openmla::cpu {

// Where a split's result goes, contiguous fp32.
struct SplitOut {
  float* lse;  // [s_q, h_q]
  float* out;  // [s_q, h_q, d_v]
};

// Attention of sequence `seq` over keys [key_begin, key_end): out normalized over those keys,
// lse = log-sum-exp of their scaled scores; rows that see none of them get out 0 and lse -inf.
void attend_split(const DecodeArgs& args, float scale, int64_t seq, int64_t key_begin, int64_t key_end,
                  const SplitOut& dst);

}  // namespace openmla::cpu
