#pragma once
// Merge test data: stacked partial results in any dtype, built in float64 from a decode Problem over
// disjoint key sets, and the page split that context parallelism makes. No GoogleTest here: the CPU
// and the GPU merge tests share it.

#include <cstdint>
#include <functional>
#include <vector>

#include "openmla/tensor.h"
#include "problem.h"

namespace openmla::test {

// Attention results of n parts, stacked: out [n, b, s_q, h_q, d_v] in `dtype`, lse [n, b, h_q, s_q].
// A merged result is the same with n = 1, seen through the rank-4 / rank-3 views.
struct Results {
  DType dtype = DType::bf16;
  int64_t n = 1;
  int64_t b = 0;
  int64_t s_q = 0;
  int64_t h_q = 0;
  int64_t d_v = 0;
  std::vector<uint32_t> out;  // [n, b, s_q, h_q, d_v] elements of dtype, packed (two 16-bit ones a word)
  std::vector<float> lse;     // [n, b, h_q, s_q]

  TensorView stacked_out() const;  // [n, b, s_q, h_q, d_v]
  TensorView stacked_lse() const;  // [n, b, h_q, s_q]
  TensorView out_view() const;     // [b, s_q, h_q, d_v] of part 0
  TensorView lse_view() const;     // [b, h_q, s_q] of part 0
  int64_t out_index(int64_t part, int64_t seq, int64_t i, int64_t h, int64_t d) const;
  int64_t lse_index(int64_t part, int64_t seq, int64_t h, int64_t i) const;
  double out_at(int64_t index) const;
  void set_out(int64_t index, double value);  // rounded to dtype; NaN and inf kept
};

// Every out element a NaN bit pattern and every lse kLseSentinel, so that unwritten values show.
Results make_results(DType dtype, int64_t n, int64_t b, int64_t s_q, int64_t h_q, int64_t d_v);

// n parts of one shape with random values: out ~ U(-1, 1), lse ~ U(-3, 3).
Results random_parts(DType dtype, int64_t n, int64_t b, int64_t s_q, int64_t h_q, int64_t d_v, uint64_t seed);

// The part in [0, n) that holds key `key` of sequence `seq`.
using KeyOwner = std::function<int64_t(int64_t seq, int64_t key)>;

// The float64 attention of the problem's queries (causal rule included) over the keys of each part,
// stored in `dtype`: a row that sees none of a part's keys gets out 0, lse +inf in that part.
Results reference_parts(const Problem& problem, int64_t n, const KeyOwner& owner, DType dtype);

// openmla::merge of `parts` on the CPU into a fresh result of `out_dtype`.
Results merge_on_host(const Results& parts, DType out_dtype);

// Two shares of each sequence's pages, as a context-parallel split makes them: share 0 holds pages
// [0, cut) and share 1 the rest, cut = min(pages / 2, (s_k - s_q) / page_size) so that share 1 holds
// the last s_q keys. Share 0's keys are then visible to every query row (decode it non-causal); only
// share 1 masks.
struct PageShare {
  std::vector<int32_t> block_table;  // [b, max_blocks_per_seq], the share's pages first, poisoned after
  std::vector<int32_t> seqlens;      // [b]
};
std::vector<PageShare> split_pages_in_two(const Problem& problem);

}  // namespace openmla::test
