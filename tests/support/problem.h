#pragma once
// MLA decode problems on the host, built with the recipe of docs/design.md: q and cache ~ N(0, 0.1²) clamped to
// ±1, the block table a random permutation of the pages, unused cache slots NaN. Shared by the CPU and
// the GPU tests (which copy these buffers to the device); no GoogleTest here.

#include <array>
#include <cstdint>
#include <optional>
#include <vector>

#include "mapped_buffer.h"
#include "openmla/tensor.h"

namespace openmla::test {

// What poisoned block-table tails hold: a page index far outside any cache.
inline constexpr int32_t kPoisonPage = 2147480000;

struct ProblemSpec {
  int64_t b = 1;
  int64_t s_q = 1;
  int64_t h_q = 16;
  int64_t h_kv = 1;
  int64_t s_k = 128;    // every sequence's length; the mean when varlen
  bool varlen = false;  // each length ~ Normal(s_k, s_k / 2), at least s_q
  bool causal = false;
  int64_t page_size = 64;
  int64_t d_qk = 576;
  int64_t d_v = 512;
  DType dtype = DType::bf16;
  std::optional<float> softmax_scale{};  // default 1 / sqrt(d_qk)
  uint64_t seed = 0;
  std::vector<int32_t> lengths{};   // [b] explicit lengths; replace s_k and varlen when non-empty
  int64_t zero_length_every = 0;    // > 0: sequences with i % zero_length_every == 0 get length 0
  bool nan_unused = true;           // NaN in every cache slot that no sequence uses
  bool poison_table_tail = true;    // block-table entries past a sequence's pages hold kPoisonPage
  int64_t extra_pages = 0;          // pages no sequence uses, shuffled among the used ones
  int64_t extra_table_columns = 1;  // block-table columns past the longest sequence's pages
  int64_t leading_pages = 0;        // pages before all others, never used nor written (zeros)
};

struct Problem {
  ProblemSpec spec;
  int64_t num_blocks = 0;
  int64_t max_blocks_per_seq = 0;
  std::vector<int32_t> seqlens;      // [b]
  std::vector<int32_t> block_table;  // [b, max_blocks_per_seq]
  std::vector<uint16_t> q;           // [b, s_q, h_q, d_qk] bf16 | fp16 bits
  MappedBuffer k_cache;              // [num_blocks, page_size, h_kv, d_qk] bf16 | fp16 bits

  float softmax_scale() const;
  const uint16_t* cache_data() const { return static_cast<const uint16_t*>(k_cache.data()); }

  // Contiguous host views for openmla::DecodeArgs.
  TensorView q_view() const;
  TensorView k_cache_view() const;
  TensorView block_table_view() const;
  TensorView seqlens_view() const;
};

// Throws std::bad_alloc when the cache cannot be mapped.
Problem make_problem(const ProblemSpec& spec);

// The problem's q laid out in a buffer of `elements` zeros: row (b, i, h) from element offset + b
// strides[0] + i strides[1] + h strides[2] on, so that a view with those strides from that element reads
// q (padded heads, heads outside the query positions, an address into a buffer).
std::vector<uint16_t> laid_out_q(const Problem& problem, const std::array<int64_t, 3>& strides, int64_t offset,
                                 int64_t elements);

// Host buffers for decode's results, pre-filled with a sentinel so that unwritten elements show.
struct Output {
  std::vector<uint16_t> out;  // [b, s_q, h_q, d_v] bf16 | fp16 bits
  std::vector<float> lse;     // [b, h_q, s_q]
  DType dtype = DType::bf16;
  int64_t sizes[4] = {};  // b, s_q, h_q, d_v

  TensorView out_view() const;
  TensorView lse_view() const;
};

inline constexpr uint16_t kOutSentinel = 0x7fa5;  // a NaN in both bf16 and fp16
inline constexpr float kLseSentinel = -12345.0f;

Output make_output(const ProblemSpec& spec);

}  // namespace openmla::test
