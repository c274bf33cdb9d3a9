#pragma once
// The benchmark cases: the shape of one MLA decode problem, the default list (the side-by-side set of
// 14 cases measured against FlashMLA and FlashAttention-3 on an H200) and each case's target.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "openmla/tensor.h"

namespace openmla::bench {

struct Case {
  int64_t b = 128;     // sequences in the batch
  int64_t s_q = 1;     // query tokens per sequence
  int64_t h_q = 16;    // query heads
  int64_t h_kv = 1;    // KV heads
  int64_t s_k = 4096;  // keys per sequence (the mean of the normal when varlen)
  bool varlen = true;  // s_k ~ Normal(s_k, s_k / 2), at least s_q; else every sequence has s_k
  bool causal = false;
  int64_t page_size = 64;  // tokens per cache page
  DType dtype = DType::bf16;
  int64_t d_qk = 576;  // 512 latent + 64 RoPE
  int64_t d_v = 512;
};

// How a target is stated: a time for fixed lengths; for varlen cases (whose time depends on the drawn
// lengths) an effective rate as a share of the same run's measured ceiling.
enum class TargetKind { max_us, min_pct_copy, min_pct_gemm };

// The best peer's time on an H200 (2026-11-30, best of two side-by-side runs, CUDA-graph timed) and
// the speed over it that openmla must reach.
struct Target {
  const char* peer;  // "FlashMLA" or "FA3" (FlashAttention-3's MLA decode)
  double peer_us;
  double ratio;  // required speed relative to the peer
  TargetKind kind;
  double value;  // µs (at most) or % of the ceiling (at least)
};

// "b=128 s_q=1 h_q=16 s_k=4096 varlen" (h_kv, page size and dtype only when not the default).
std::string case_name(const Case& c);

// The 14 side-by-side cases, in order.
std::vector<Case> default_cases();

// The target of this case, when it is one of the default cases.
std::optional<Target> target_of(const Case& c);

}  // namespace openmla::bench
