#pragma once
// FP8 copies of a Problem's cache in either of decode's FP8 formats (docs/fp8.md), built on the host
// independently of the library, and the exact values they stand for (what the float64 reference reads).

#include <cstdint>

#include "mapped_buffer.h"
#include "openmla/decode.h"
#include "problem.h"

namespace openmla::test {

// Exact value of an e4m3fn byte (NaN for 0x7f and 0xff).
double e4m3_to_double(uint8_t bits);

// The nearest e4m3fn byte, ties to even; |value| must be at most 448 (finite values), NaN gives 0x7f.
uint8_t double_to_e4m3(double value);

struct Fp8CacheSpec {
  CacheFormat format = CacheFormat::fp8_per_tensor;
  // fp8_per_tensor: 0 picks max|k| / 448 over the cache's finite values.
  float scale = 0.0f;
  // fp8_656: round each scale up to a power of two, as FlashMLA's quantizer does (its scales are then
  // exact in any dtype); otherwise scale = max|tile| / 448 as an fp32.
  bool pow2_scales = false;
  // The dtype of the 656-byte cache view: uint8 or fp8_e4m3 (FlashMLA's callers pass either).
  DType bytes_dtype = DType::uint8;
};

struct Fp8Cache {
  Fp8CacheSpec spec;
  int64_t row_bytes = 0;  // bytes per token and KV head: d_qk, or 656
  int64_t num_blocks = 0, page_size = 0, h_kv = 0, d_qk = 0;
  DType rope_dtype = DType::bf16;  // q's dtype: the 656-byte token's RoPE values
  MappedBuffer bytes;              // [num_blocks, page_size, h_kv, row_bytes]
  float scale = 1.0f;              // fp8_per_tensor: k_scale[0]

  TensorView view() const;        // k_cache for decode
  TensorView scale_view() const;  // k_scale for decode: [1] fp32 (fp8_per_tensor), else empty
  // The exact (dequantized) values of key (block, slot, head): d_qk doubles to dst.
  void dequantize(int64_t block, int64_t slot, int64_t head, double* dst) const;
};

// Quantizes the problem's cache, unused slots included (their NaN become NaN bytes and NaN scales).
Fp8Cache quantize_cache(const Problem& problem, const Fp8CacheSpec& spec);

// Points args at the FP8 cache: k_cache, cache_format and k_scale.
void use_cache(DecodeArgs& args, const Fp8Cache& cache);

}  // namespace openmla::test
