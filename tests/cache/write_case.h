#pragma once
// Cache-write test data: host arrays of 16-bit elements (any bit pattern: the op copies bits) for
// kv_c, k_pe, slot_mapping and a paged cache, views of them, and the cache that a write must leave.
// No GoogleTest here: the CPU and the GPU cache-write tests share it.

#include <cstdint>
#include <vector>

#include "openmla/tensor.h"

namespace openmla::test {

// One write of `tokens` rows into a cache [num_blocks, page_size, 1, d_v + d_rope]. Rows of kv_c and
// k_pe and pages of the cache may be padded (row_pad, page_pad elements past the data), so that the
// views have non-contiguous strides.
struct WriteCase {
  DType dtype = DType::bf16;
  int64_t tokens = 0;
  int64_t d_v = 0;
  int64_t d_rope = 0;
  int64_t num_blocks = 0;
  int64_t page_size = 0;
  int64_t row_pad = 0;                // extra elements per kv_c / k_pe row
  int64_t page_pad = 0;               // extra elements per cache page
  std::vector<uint16_t> kv_c;         // [tokens, d_v + row_pad]
  std::vector<uint16_t> k_pe;         // [tokens, d_rope + row_pad]
  std::vector<int64_t> slot_mapping;  // [tokens]
  std::vector<uint16_t> k_cache;      // [num_blocks, page_size * d_qk + page_pad]

  int64_t d_qk() const { return d_v + d_rope; }
  int64_t page_stride() const { return page_size * d_qk() + page_pad; }
  int64_t slots() const { return num_blocks * page_size; }

  TensorView kv_c_view();          // [tokens, d_v]
  TensorView k_pe_view();          // [tokens, d_rope]
  TensorView slot_mapping_view();  // [tokens] int64
  TensorView k_cache_view();       // [num_blocks, page_size, 1, d_qk]

  // The cache after a write of every token whose slot lies in [0, slots()): the row of slot s is
  // [kv_c row, k_pe row] of its token (of the last such token when slots repeat), every other element
  // as before.
  std::vector<uint16_t> expected_cache() const;
};

// Random bit patterns everywhere (NaN and inf patterns included), the cache filled with a canary
// pattern, and each token a distinct random slot in [0, slots()) (tokens past slots() get -1).
WriteCase make_write_case(DType dtype, int64_t tokens, int64_t d_v, int64_t d_rope, int64_t num_blocks,
                          int64_t page_size, uint64_t seed, int64_t row_pad = 0, int64_t page_pad = 0);

// The first element offset, in k_cache, of slot `slot`'s row.
int64_t row_offset(const WriteCase& c, int64_t slot);

}  // namespace openmla::test
