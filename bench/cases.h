#pragma once
// The benchmark cases: the shape of one MLA decode problem, the default list (docs/design.md) and
// FlashMLA's reference times for the cases of that list.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "openmla/tensor.h"

namespace openmla::bench {

struct Case {
  int64_t b = 128;          // sequences in the batch
  int64_t s_q = 1;          // query tokens per sequence
  int64_t h_q = 16;         // query heads
  int64_t h_kv = 1;         // KV heads
  int64_t s_k = 4096;       // keys per sequence (the mean of the normal when varlen)
  bool varlen = true;       // s_k ~ Normal(s_k, s_k / 2), at least s_q; else every sequence has s_k
  bool causal = false;
  int64_t page_size = 64;   // tokens per cache page
  DType dtype = DType::bf16;
  int64_t d_qk = 576;       // 512 latent + 64 RoPE
  int64_t d_v = 512;
};

// "b=128 s_q=1 h_q=16 s_k=4096 varlen" (h_kv, page size and dtype only when not the default).
std::string case_name(const Case& c);

// The cases of the table in docs/design.md (FlashMLA reference times).
std::vector<Case> default_cases();

// FlashMLA's time in µs for this case on an H100 80GB HBM3 (docs/design.md), when the table has it.
std::optional<double> flashmla_h100_us(const Case& c);

}  // namespace openmla::bench
