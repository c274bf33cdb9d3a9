// The cache-format rules of decode (docs/fp8.md): a k_cache, k_scale or cache_format that do not
// agree throw openmla::Error naming the argument, and nothing is written.

#include <gtest/gtest.h>

#include <string>

#include "fp8_cache.h"
#include "valid_decode.h"

namespace openmla::test {
namespace {

class Fp8Validation : public ValidDecode {
 protected:
  void use(const Fp8CacheSpec& spec) {
    cache_ = quantize_cache(problem_, spec);
    use_cache(args_, cache_);
  }

  Fp8Cache cache_;
};

TEST_F(Fp8Validation, ValidCallsSucceed) {
  for (CacheFormat format : {CacheFormat::fp8_per_tensor, CacheFormat::fp8_656}) {
    use({.format = format});
    decode(args_);
    EXPECT_NE(output_.out[0], kOutSentinel) << cache_format_name(format);
    output_.out.assign(output_.out.size(), kOutSentinel);
  }
}

TEST_F(Fp8Validation, Fp8CacheWithoutItsFormat) {
  use({.format = CacheFormat::fp8_per_tensor});
  args_.cache_format = CacheFormat::plain;
  args_.k_scale = TensorView{};
  expect_rejected({"k_cache: expected dtype bf16, given fp8_e4m3"});
}

TEST_F(Fp8Validation, PerTensorCacheOfTheQueryDtype) {
  args_.cache_format = CacheFormat::fp8_per_tensor;
  float scale = 1.0f;
  args_.k_scale = make_view(&scale, DType::fp32, {1});
  expect_rejected({"k_cache: expected dtype fp8_e4m3, given bf16"});
}

TEST_F(Fp8Validation, PerTensorWithoutScale) {
  use({.format = CacheFormat::fp8_per_tensor});
  args_.k_scale = TensorView{};
  expect_rejected({"k_scale: expected rank 1 [1], given rank 0"});
}

TEST_F(Fp8Validation, ScaleOfTheWrongDtypeSizeOrPointer) {
  use({.format = CacheFormat::fp8_per_tensor});
  args_.k_scale.dtype = DType::bf16;
  expect_rejected({"k_scale: expected dtype fp32, given bf16"});
  args_.k_scale.dtype = DType::fp32;
  args_.k_scale.sizes[0] = 2;
  expect_rejected({"k_scale.size(0): expected 1 (one scale for the cache), given 2"});
  args_.k_scale.sizes[0] = 1;
  args_.k_scale.data = nullptr;
  expect_rejected({"k_scale: expected a non-null data pointer, given nullptr"});
}

TEST_F(Fp8Validation, ScaleOnAnotherDevice) {
  use({.format = CacheFormat::fp8_per_tensor});
  args_.k_scale.device = Device{DeviceType::cuda, 0};
  expect_rejected({"k_scale: expected device cpu, given cuda:0"});
}

TEST_F(Fp8Validation, ScaleWithAFormatThatHasNone) {
  float scale = 1.0f;
  args_.k_scale = make_view(&scale, DType::fp32, {1});
  expect_rejected({"k_scale: expected none (a rank-0 view with a null pointer) with cache_format plain",
                   "given rank 1 with data"});
  use({.format = CacheFormat::fp8_656});
  args_.k_scale = make_view(&scale, DType::fp32, {1});
  expect_rejected({"k_scale: expected none", "with cache_format fp8_656"});
}

TEST_F(Fp8Validation, TokenLayoutSizes) {
  use({.format = CacheFormat::fp8_656});
  args_.k_cache.sizes[3] = 576;
  expect_rejected({"k_cache.size(3): expected 656 (bytes per token with cache_format fp8_656), given 576"});
}

TEST_F(Fp8Validation, TokenLayoutNeedsDeepSeekDims) {
  set_up({.s_q = 1, .h_q = 2, .page_size = 16, .d_qk = 320, .d_v = 256, .seed = 42, .lengths = {20}}, 1);
  args_.cache_format = CacheFormat::fp8_656;
  args_.k_cache.dtype = DType::uint8;
  args_.k_cache.sizes[3] = 656;
  expect_rejected({"q.size(3) (d_qk): expected 576 with cache_format fp8_656, given 320"});
}

TEST_F(Fp8Validation, TokenLayoutNeedsDv512) {
  set_up({.s_q = 1, .h_q = 2, .page_size = 16, .d_v = 256, .seed = 43, .lengths = {20}}, 1);
  use({.format = CacheFormat::fp8_656});
  expect_rejected({"d_v: expected 512 with cache_format fp8_656, given 256"});
}

TEST_F(Fp8Validation, TokenLayoutOfAnotherDtype) {
  use({.format = CacheFormat::fp8_656});
  args_.k_cache.dtype = DType::bf16;
  expect_rejected({"k_cache: expected dtype uint8 or fp8_e4m3, given bf16"});
}

TEST_F(Fp8Validation, UnknownFormat) {
  args_.cache_format = static_cast<CacheFormat>(7);
  expect_rejected({"cache_format: expected plain, fp8_per_tensor or fp8_656, given 7"});
}

TEST_F(Fp8Validation, OutputOverTheScale) {
  use({.format = CacheFormat::fp8_per_tensor});
  args_.k_scale.data = output_.lse.data();
  expect_rejected({"lse: expected memory that no input or other output shares", "k_scale"});
}

}  // namespace
}  // namespace openmla::test
