#pragma once
// The benchmark cases: the shape of one MLA decode problem, the default list (the side-by-side set of
// 14 cases measured against FlashMLA and FlashAttention-3 on an H200, then the FP8 cases of issue 13
// with their bf16 twins) and each case's target.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "openmla/decode.h"
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
  // The cache: plain (dtype), or FP8 quantized from the dtype cache by openmla::write_cache (per-tensor
  // scale 1/448: the values lie in [-1, 1]).
  CacheFormat format = CacheFormat::plain;
  Kernel kernel = Kernel::automatic;  // portable: the portable kernel forced, its plan made for it
  int64_t num_parts = 0;              // the plan's work parts; 0: the library's default
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

// "b=128 s_q=1 h_q=16 s_k=4096 varlen" (h_kv, page size, dtype, cache format, kernel and num_parts only
// when not the default).
std::string case_name(const Case& c);

// Bytes of one token of one KV head as the cache stores it: d_qk elements, d_qk e4m3 bytes, or 656.
int64_t cache_token_bytes(const Case& c);

// The 14 side-by-side cases, then the FP8 cases, each after its bf16 twin.
std::vector<Case> default_cases();

// The target of this case, when it is one of the 14 side-by-side cases.
std::optional<Target> target_of(const Case& c);

// An FP8 case's twin: the same case with a plain cache of its dtype (bf16 in the default list), which
// the FP8 case is measured against in the same run.
Case plain_twin(const Case& c);

// The speed over its twin (tokens/s ratio: the twin's time over the case's) that an FP8 case of the
// default list must reach on an H200 (issue 13).
std::optional<double> fp8_target_of(const Case& c);

}  // namespace openmla::bench
