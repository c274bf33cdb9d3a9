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
void check_no_scale(const DecodeArgs& a) {
  if (a.k_scale.rank != 0 || a.k_scale.data != nullptr) {
    fail("k_scale", std::string("none (a rank-0 view with a null pointer) with cache_format ") +
                        cache_format_name(a.cache_format),
         "rank " + std::to_string(a.k_scale.rank) + (a.k_scale.data ? " with data" : ""));
  }
}

}  // namespace

void check_cache_views(const DecodeArgs& a) {
  const Device device = a.q.device;
  switch (a.cache_format) {
    case CacheFormat::plain:
      check_view("k_cache", a.k_cache, 4, kCacheDims, {a.q.dtype}, device);
      check_no_scale(a);
      return;
    case CacheFormat::fp8_per_tensor:
      check_view("k_cache", a.k_cache, 4, kCacheDims, {DType::fp8_e4m3}, device);
      check_view("k_scale", a.k_scale, 1, "[1]", {DType::fp32}, device);
      return;
    case CacheFormat::fp8_656:
      check_view("k_cache", a.k_cache, 4, "[num_blocks, page_size, h_kv, 656]", {DType::uint8, DType::fp8_e4m3},
                 device);
      check_no_scale(a);
      return;
  }
  fail("cache_format", "plain, fp8_per_tensor or fp8_656", std::to_string(static_cast<int32_t>(a.cache_format)));
}

void check_cache_sizes(const DecodeArgs& a) {
  const int64_t d_qk = a.q.sizes[3];
  if (a.cache_format != CacheFormat::fp8_656) {
    check_size("k_cache", a.k_cache, 3, d_qk, "d_qk from q");
    if (has_scale(a.cache_format)) {
      check_size("k_scale", a.k_scale, 0, 1, "one scale for the cache");
    }
    return;
  }
  if (d_qk != kFp8TokenValues + kFp8TokenRope) {
    fail("q.size(3) (d_qk)", std::to_string(kFp8TokenValues + kFp8TokenRope) + " with cache_format fp8_656",
         std::to_string(d_qk));
  }
  if (a.d_v != kFp8TokenValues) {
    fail("d_v", std::to_string(kFp8TokenValues) + " with cache_format fp8_656", std::to_string(a.d_v));
  }
  check_size("k_cache", a.k_cache, 3, kFp8TokenBytes, "bytes per token with cache_format fp8_656");
}

void check_cache_data(const DecodeArgs& a) {
  if (has_scale(a.cache_format)) {
    check_data("k_scale", a.k_scale);
  }
}

}  // namespace detail

}  // namespace openmla
