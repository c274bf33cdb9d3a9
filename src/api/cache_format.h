#pragma once
// The cache-format rules of decode: k_cache's dtype and last size, and k_scale, for each CacheFormat.

#include <cstdint>

#include "openmla/decode.h"

namespace openmla::detail {

// Ranks, dtypes and devices of k_cache and k_scale for a.cache_format (q's view is already checked).
void check_cache_views(const DecodeArgs& a);

// Their sizes against q's d_qk and d_v.
void check_cache_sizes(const DecodeArgs& a);

// Non-null k_scale data with fp8_per_tensor (after the size rules, as check_data).
void check_cache_data(const DecodeArgs& a);

// Whether the format reads k_scale.
inline bool has_scale(CacheFormat format) { return format == CacheFormat::fp8_per_tensor; }

}  // namespace openmla::detail
