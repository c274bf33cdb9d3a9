#pragma once
// The layouts a latent cache can have: what decode reads and a plan is balanced for.

#include <cstdint>

namespace openmla {

// How k_cache stores the keys (docs/fp8.md gives both FP8 layouts byte by byte).
enum class CacheFormat : int32_t {
  // [num_blocks, page_size, h_kv, d_qk] in q's dtype.
  plain = 0,
  // [num_blocks, page_size, h_kv, d_qk] fp8_e4m3 and one fp32 scale for the whole cache, k_scale:
  // key value = fp8 value * k_scale[0].
  fp8_per_tensor = 1,
  // FlashMLA's FP8 token (DeepSeek-V3.2, vLLM's "fp8_ds_mla"): [num_blocks, page_size, h_kv, 656] uint8 or
  // fp8_e4m3 bytes, for d_qk = 576 and d_v = 512. Per token and KV head: 512 e4m3 values, 4 fp32 scales
  // (one per 128 values: value = fp8 * scale), then the 64 RoPE values in q's dtype (bf16 for an fp32 q).
  fp8_656 = 2,
};

// "plain", "fp8_per_tensor" or "fp8_656".
const char* cache_format_name(CacheFormat format);

// Bytes of one token and KV head of a cache in the 656-byte format, and the parts of it.
inline constexpr int64_t kFp8TokenBytes = 656;
inline constexpr int64_t kFp8TokenValues = 512;  // e4m3 values, the first 512 of d_qk
inline constexpr int64_t kFp8TokenTile = 128;    // values per fp32 scale
inline constexpr int64_t kFp8TokenRope = 64;     // RoPE values in q's dtype, the last 64 of d_qk

}  // namespace openmla
