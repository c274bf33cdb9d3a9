#pragma once
// FP8 cache-write test data (docs/fp8.md): bf16 / fp16 rows of kv_c and k_pe (random bit patterns, NaN
// and infinities included, or normal values over many magnitudes), a byte cache of either FP8 format
// filled with a canary, and the bytes a write must leave there, computed by a model written from the
// documented rule independently of the library (tests/support's e4m3 table, double arithmetic).
// No GoogleTest here: the CPU and the GPU cache-write tests share it.

#include <cstdint>
#include <vector>

#include "openmla/cache.h"
#include "write_case.h"

namespace openmla::test {

// What the rows hold.
enum class RowValues {
  bits,    // every 16-bit pattern equally likely
  normal,  // N(0, sigma^2) with sigma drawn per token from 10^[-7, 3]: e4m3 subnormals, saturation
};

struct Fp8WriteCase {
  CacheFormat format = CacheFormat::fp8_per_tensor;
  DType cache_dtype = DType::fp8_e4m3;  // fp8_656: uint8 or fp8_e4m3
  WriteCase rows;                       // kv_c, k_pe and slot_mapping (its own k_cache is not used)
  float scale = 1.0f;                   // k_scale[0] with fp8_per_tensor
  int64_t page_pad = 0;                 // extra bytes per cache page
  std::vector<uint8_t> k_cache;         // [num_blocks, page_size * row_bytes() + page_pad] bytes

  int64_t row_bytes() const { return format == CacheFormat::fp8_656 ? kFp8TokenBytes : rows.d_qk(); }
  int64_t page_stride() const { return rows.page_size * row_bytes() + page_pad; }

  TensorView k_cache_view();  // [num_blocks, page_size, 1, row_bytes()]
  TensorView k_scale_view();  // [1] fp32 with fp8_per_tensor, else empty
  WriteCacheArgs args();      // the CPU write of the case

  // The cache after a write of every token whose slot lies in [0, slots()), by the model.
  std::vector<uint8_t> expected_cache() const;
};

// d_v 512 and d_rope 64 for fp8_656; any sizes for fp8_per_tensor. `scale` is fp8_per_tensor's.
Fp8WriteCase make_fp8_write_case(CacheFormat format, DType dtype, RowValues values, int64_t tokens, int64_t d_v,
                                 int64_t d_rope, int64_t num_blocks, int64_t page_size, float scale, uint64_t seed,
                                 int64_t row_pad = 0, int64_t page_pad = 0);

// A named case shape of the parameterized CPU and GPU write tests.
struct Fp8WriteShape {
  const char* name;
  CacheFormat format;
  DType dtype;  // of the rows
  RowValues values;
  int64_t tokens, d_v, d_rope, num_blocks, page_size;
  float scale;
  int64_t row_pad, page_pad;
  DType cache_dtype = DType::fp8_e4m3;
};

// make_fp8_write_case of the shape's sizes, with its cache_dtype.
Fp8WriteCase make_fp8_write_case(const Fp8WriteShape& shape, uint64_t seed);

// The model's bytes for one token's row: [d_v + d_rope] e4m3 (fp8_per_tensor) or 656 (fp8_656).
std::vector<uint8_t> expected_row(const Fp8WriteCase& c, int64_t token);

// The first byte offset, in k_cache, of slot `slot`'s row.
int64_t fp8_row_offset(const Fp8WriteCase& c, int64_t slot);

}  // namespace openmla::test
