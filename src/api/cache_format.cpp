#include "cache_format.h"

#include <string>

#include "check.h"

namespace openmla {

const char* cache_format_name(CacheFormat format) {
  switch (format) {
    case CacheFormat::plain:
      return "plain";
    case CacheFormat::fp8_per_tensor:
      return "fp8_per_tensor";
    case CacheFormat::fp8_656:
      return "fp8_656";
  }
  return "an unknown cache format";
}

namespace detail {

namespace {

constexpr const char* kCacheDims = "[num_blocks, page_size, h_kv, d_qk]";

// A k_scale where the format has none: refused rather than ignored, so that a caller who meant a
// scaled cache but forgot cache_format hears of it.
void check_no_scale(const CacheOperand& c) {
  if (c.k_scale.rank != 0 || c.k_scale.data != nullptr) {
    fail("k_scale",
         std::string("none (a rank-0 view with a null pointer) with cache_format ") + cache_format_name(c.format),
         "rank " + std::to_string(c.k_scale.rank) + (c.k_scale.data ? " with data" : ""));
  }
}

}  // namespace

void check_cache_format(const char* name, CacheFormat format) {
  switch (format) {
    case CacheFormat::plain:
    case CacheFormat::fp8_per_tensor:
    case CacheFormat::fp8_656:
      return;
  }
  fail(name, "plain, fp8_per_tensor or fp8_656", std::to_string(static_cast<int32_t>(format)));
}

void check_cache_views(const CacheOperand& c, std::initializer_list<DType> plain_dtypes) {
  switch (c.format) {
    case CacheFormat::plain:
      check_view("k_cache", c.k_cache, 4, kCacheDims, plain_dtypes, c.device);
      check_no_scale(c);
      return;
    case CacheFormat::fp8_per_tensor:
      check_view("k_cache", c.k_cache, 4, kCacheDims, {DType::fp8_e4m3}, c.device);
      check_view("k_scale", c.k_scale, 1, "[1]", {DType::fp32}, c.device);
      return;
    case CacheFormat::fp8_656:
      check_view("k_cache", c.k_cache, 4, "[num_blocks, page_size, h_kv, 656]", {DType::uint8, DType::fp8_e4m3},
                 c.device);
      check_no_scale(c);
      return;
  }
  check_cache_format("cache_format", c.format);  // not one of the three: throws
}

void check_cache_sizes(const CacheOperand& c, const CacheDims& dims) {
  if (c.format != CacheFormat::fp8_656) {
    check_size("k_cache", c.k_cache, 3, dims.d_qk, dims.d_qk_from);
    if (has_scale(c.format)) {
      check_size("k_scale", c.k_scale, 0, 1, "one scale for the cache");
    }
    return;
  }
  if (dims.d_qk != kFp8TokenValues + kFp8TokenRope) {
    fail(dims.d_qk_name, std::to_string(kFp8TokenValues + kFp8TokenRope) + " with cache_format fp8_656",
         std::to_string(dims.d_qk));
  }
  if (dims.d_v != kFp8TokenValues) {
    fail(dims.d_v_name, std::to_string(kFp8TokenValues) + " with cache_format fp8_656", std::to_string(dims.d_v));
  }
  check_size("k_cache", c.k_cache, 3, kFp8TokenBytes, "bytes per token with cache_format fp8_656");
}

void check_cache_data(const CacheOperand& c) {
  if (has_scale(c.format)) {
    check_data("k_scale", c.k_scale);
  }
}

}  // namespace detail

}  // namespace openmla
