// The FP8 rules of openmla::write_cache (decode's cache-format rules, src/api/cache_format.h): a format,
// dtype, size or scale that does not fit throws openmla::Error with the full message and the cache
// keeps every byte it had.

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "fp8_write_case.h"
#include "openmla/cache.h"
#include "openmla/error.h"
#include "refused.h"

namespace openmla::test {
namespace {

// A valid write of 4 bf16 tokens into a cache of 2 pages of 4 slots, with a status word: per tensor
// (d_v 32, d_rope 8) or 656-byte tokens (512, 64).
struct Fixture {
  Fp8WriteCase c;
  int32_t word = 0;
  WriteCacheArgs args;

  explicit Fixture(CacheFormat format)
      : c(make_fp8_write_case(format, DType::bf16, RowValues::normal, 4, format == CacheFormat::fp8_656 ? 512 : 32,
                              format == CacheFormat::fp8_656 ? 64 : 8, 2, 4, 0.25f, 31)),
        args(c.args()) {
    args.status = Buffer{&word, sizeof(word), Device{}};
  }
};

struct Rule {
  const char* name;
  CacheFormat format;                          // of the fixture
  std::function<void(WriteCacheArgs&)> which;  // breaks the fixture's arguments
  const char* message;
};

void PrintTo(const Rule& rule, std::ostream* os) { *os << rule.name; }

const Device kGpu{DeviceType::cuda, 0};
constexpr CacheFormat kPerTensor = CacheFormat::fp8_per_tensor;
constexpr CacheFormat k656 = CacheFormat::fp8_656;

char* bytes(const TensorView& v) { return static_cast<char*>(v.data); }

const Rule kRules[] = {
    {"UnknownFormat", kPerTensor, [](WriteCacheArgs& a) { a.cache_format = static_cast<CacheFormat>(7); },
     "openmla: cache_format: expected plain, fp8_per_tensor or fp8_656, given 7"},
    {"Fp8CacheWrittenAsPlain", kPerTensor,
     [](WriteCacheArgs& a) {
       a.cache_format = CacheFormat::plain;
       a.k_scale = TensorView{};
     },
     "openmla: k_cache: expected dtype bf16 or fp16 or fp32, given fp8_e4m3"},
    {"PerTensorBf16Cache", kPerTensor, [](WriteCacheArgs& a) { a.k_cache.dtype = DType::bf16; },
     "openmla: k_cache: expected dtype fp8_e4m3, given bf16"},
    {"PerTensorUint8Cache", kPerTensor, [](WriteCacheArgs& a) { a.k_cache.dtype = DType::uint8; },
     "openmla: k_cache: expected dtype fp8_e4m3, given uint8"},
    {"PerTensorWithoutScale", kPerTensor, [](WriteCacheArgs& a) { a.k_scale = TensorView{}; },
     "openmla: k_scale: expected rank 1 [1], given rank 0"},
    {"ScaleDtype", kPerTensor, [](WriteCacheArgs& a) { a.k_scale.dtype = DType::bf16; },
     "openmla: k_scale: expected dtype fp32, given bf16"},
    {"ScaleOnAnotherDevice", kPerTensor, [](WriteCacheArgs& a) { a.k_scale.device = kGpu; },
     "openmla: k_scale: expected device cpu, given cuda:0"},
    {"TwoScales", kPerTensor, [](WriteCacheArgs& a) { a.k_scale.sizes[0] = 2; },
     "openmla: k_scale.size(0): expected 1 (one scale for the cache), given 2"},
    {"NullScale", kPerTensor, [](WriteCacheArgs& a) { a.k_scale.data = nullptr; },
     "openmla: k_scale: expected a non-null data pointer, given nullptr"},
    {"MisalignedScale", kPerTensor, [](WriteCacheArgs& a) { a.k_scale.data = bytes(a.k_scale) + 1; },
     "openmla: k_scale: expected data aligned to its element size (4 bytes), given a misaligned pointer"},
    {"ScaleInsideCache", kPerTensor, [](WriteCacheArgs& a) { a.k_scale.data = bytes(a.k_cache) + 8; },
     "openmla: k_cache: expected memory that no input or other output shares, given memory overlapping k_scale"},
    {"StatusIsTheScale", kPerTensor, [](WriteCacheArgs& a) { a.status.data = a.k_scale.data; },
     "openmla: status: expected memory that no input shares, given memory overlapping k_scale"},
    {"Fp32Rows", kPerTensor,
     [](WriteCacheArgs& a) {
       a.kv_c.dtype = DType::fp32;
       a.k_pe.dtype = DType::fp32;
     },
     "openmla: kv_c: expected dtype bf16 or fp16, given fp32"},
    {"RopeDtypeDiffers", kPerTensor, [](WriteCacheArgs& a) { a.k_pe.dtype = DType::fp16; },
     "openmla: k_pe: expected dtype bf16, given fp16"},
    {"PerTensorRowWidth", kPerTensor, [](WriteCacheArgs& a) { a.k_cache.sizes[3] = 39; },
     "openmla: k_cache.size(3): expected 40 (kv_c.size(1) + k_pe.size(1)), given 39"},
    {"Token656Bf16Cache", k656, [](WriteCacheArgs& a) { a.k_cache.dtype = DType::bf16; },
     "openmla: k_cache: expected dtype uint8 or fp8_e4m3, given bf16"},
    {"Token656WithScale", k656,
     [](WriteCacheArgs& a) {
       static float scale = 1.0f;
       a.k_scale = make_view(&scale, DType::fp32, {1});
     },
     "openmla: k_scale: expected none (a rank-0 view with a null pointer) with cache_format fp8_656, given rank 1 "
     "with data"},
    {"Token656RowOf576", k656, [](WriteCacheArgs& a) { a.k_cache.sizes[3] = 576; },
     "openmla: k_cache.size(3): expected 656 (bytes per token with cache_format fp8_656), given 576"},
    {"Token656ShortRope", k656, [](WriteCacheArgs& a) { a.k_pe.sizes[1] = 32; },
     "openmla: kv_c.size(1) + k_pe.size(1) (d_qk): expected 576 with cache_format fp8_656, given 544"},
    {"Token656LatentOf448", k656,
     [](WriteCacheArgs& a) {
       a.kv_c.sizes[1] = 448;
       a.k_pe.sizes[1] = 128;
       a.k_pe.strides[0] = 128;
     },
     "openmla: kv_c.size(1) (d_v): expected 512 with cache_format fp8_656, given 448"},
    {"Token656Fp32Rows", k656,
     [](WriteCacheArgs& a) {
       a.kv_c.dtype = DType::fp32;
       a.k_pe.dtype = DType::fp32;
     },
     "openmla: kv_c: expected dtype bf16 or fp16, given fp32"},
};

class Fp8WriteCacheValidation : public ::testing::TestWithParam<Rule> {};

TEST_P(Fp8WriteCacheValidation, RejectsAndWritesNothing) {
  Fixture f(GetParam().format);
  GetParam().which(f.args);
  expect_refused_unwritten(f.args, f.c.k_cache, GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(Cpu, Fp8WriteCacheValidation, ::testing::ValuesIn(kRules),
                         [](const ::testing::TestParamInfo<Rule>& rule) { return std::string(rule.param.name); });

TEST(Fp8WriteCacheValidationBaseline, TheValidCallsWrite) {
  for (CacheFormat format : {kPerTensor, k656}) {
    SCOPED_TRACE(cache_format_name(format));
    Fixture f(format);
    const std::vector<uint8_t> want = f.c.expected_cache();
    ASSERT_NE(want, f.c.k_cache);
    write_cache(f.args);
    EXPECT_EQ(f.c.k_cache, want);
  }
}

}  // namespace
}  // namespace openmla::test
