#pragma once
// The cache-format rules that decode and write_cache share: k_cache's dtype and last size, and k_scale,
// for each CacheFormat.

#include <cstdint>
#include <initializer_list>

#include "openmla/decode.h"

namespace openmla::detail {

// The cache of a decode or a write: k_cache and k_scale as `format` says, on `device`.
struct CacheOperand {
  const TensorView& k_cache;
  CacheFormat format;
  const TensorView& k_scale;
  Device device;
};

// How the call names the sizes a cache must match: d_qk (k_cache.size(3) for plain and fp8_per_tensor;
// 576 for fp8_656) and d_v (512 for fp8_656).
struct CacheDims {
  int64_t d_qk;
  const char* d_qk_name;  // the argument d_qk comes from, e.g. "q.size(3) (d_qk)"
  const char* d_qk_from;  // how k_cache.size(3)'s message names it, e.g. "d_qk from q"
  int64_t d_v;
  const char* d_v_name;  // e.g. "d_v"
};

// `format` is one of CacheFormat's values (an integer cast to it may be any); `name` is the argument.
void check_cache_format(const char* name, CacheFormat format);

// Ranks, dtypes and devices of k_cache and k_scale; a plain cache has one of `plain_dtypes`.
void check_cache_views(const CacheOperand& c, std::initializer_list<DType> plain_dtypes);

// Their sizes against d_qk and d_v.
void check_cache_sizes(const CacheOperand& c, const CacheDims& dims);

// Non-null k_scale data with fp8_per_tensor (after the size rules, as check_data).
void check_cache_data(const CacheOperand& c);

// Whether the format reads k_scale.
inline bool has_scale(CacheFormat format) { return format == CacheFormat::fp8_per_tensor; }

}  // namespace openmla::detail
