#pragma once
// Cache write: each new token's latent row and RoPE part into its slot of the paged latent cache that
// decode reads (openmla/decode.h).

#include <cstdint>

#include "openmla/decode.h"
#include "openmla/tensor.h"

namespace openmla {

// The most tokens one write_cache call takes (the status word names a token index below it).
inline constexpr int64_t kMaxWriteTokens = int64_t{1} << 27;

// Bytes of a write_cache status buffer: one int32 word, 4-byte aligned.
inline constexpr int64_t kWriteStatusBytes = 4;

// For each token t with slot = slot_mapping[t]:
//   slot < 0                          padding: nothing is written for t;
//   0 <= slot < num_blocks*page_size  row = k_cache[slot / page_size, slot % page_size, 0] gets [kv_c[t], k_pe[t]];
//   otherwise                         an offence (see write_cache below).
// How the row stores the values follows cache_format (docs/fp8.md gives both FP8 layouts byte by byte):
//   plain           the values bit for bit;
//   fp8_per_tensor  each value v as the e4m3 byte of v / k_scale[0] (fp32 division), rounded to nearest
//                   even, |v / k_scale| >= 448 (infinities too) saturated to +-448, NaN as 0x7f;
//   fp8_656         kv_c[t] in 4 groups of 128 values, each with the scale s = the smallest power of two
//                   with max(max|group|, 1e-30) <= 448 s (NaN 0x7fc00000 for a group with a NaN), as fp32;
//                   each value as the e4m3 byte of v / s (exact: s is a power of two) rounded as above;
//                   then k_pe[t]'s 64 values bit for bit (the RoPE part in the rows' dtype).
// This is openmla.quantize_cache's rule, so a cache written token by token equals the quantized copy
// of the same bf16/fp16 cache. Two tokens with the same slot leave one of their rows there, which one is
// unspecified. Every view may have a null data pointer when one of its dimensions is 0 (tokens = 0 writes
// nothing). k_cache must give each element its own memory and share none with kv_c, k_pe, slot_mapping,
// k_scale or the status buffer.
struct WriteCacheArgs {
  TensorView kv_c{};          // [tokens, d_v] bf16 | fp16 (| fp32 for a plain cache on the CPU), last dim contiguous
  TensorView k_pe{};          // [tokens, d_qk - d_v] kv_c's dtype, last dim contiguous
  TensorView slot_mapping{};  // [tokens] int64; negative = skip
  // [num_blocks, page_size, h_kv = 1, d_qk] as cache_format says (plain: kv_c's dtype; fp8_per_tensor:
  // fp8_e4m3; fp8_656: [..., 656] uint8 | fp8_e4m3 bytes with d_v = 512, d_qk = 576), last dim contiguous
  TensorView k_cache{};
  CacheFormat cache_format = CacheFormat::plain;
  // [1] fp32 on k_cache's device with fp8_per_tensor, read by the device when the write runs (a captured
  // graph replays with a new value); not checked (0 or NaN give saturated or NaN bytes); empty otherwise
  TensorView k_scale{};
  // The device status word (CUDA): kWriteStatusBytes on k_cache's device, reset by reset_status before
  // its first use. Optional: empty (null data) skips out-of-range slots without a record. On the CPU it
  // may be given and is never written (offences throw before anything is written).
  Buffer status{};
  void* stream = nullptr;  // cudaStream_t; ignored by the CPU backend
};

// Checks every argument on the host (throwing openmla::Error before anything is written), then writes.
// CPU: slot_mapping is read up front; a slot >= num_blocks * page_size throws naming the token, and
// nothing is written. CUDA: one kernel on `stream`, no allocation, no synchronization (CUDA-graph safe);
// a slot >= num_blocks * page_size is skipped (nothing is written out of bounds) and recorded in the
// status word as StatusCode::slot_out_of_range with the token index in DecodeStatus::batch. The word is
// never reset by write_cache: it keeps the lowest offending token index of every call since the last
// reset_status, and read_status / check_status (openmla/decode.h) read it.
void write_cache(const WriteCacheArgs& args);

// Sets a status buffer (write_cache's, or a decode workspace) to "ok": on a CUDA device a 4-byte
// memset on `stream`, capturable in a CUDA graph; on the CPU a plain store.
void reset_status(const Buffer& status, void* stream = nullptr);

}  // namespace openmla
