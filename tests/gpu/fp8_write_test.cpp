// openmla::write_cache into FP8 caches on the GPU (docs/fp8.md): byte for byte the CPU backend's cache
// (itself held to the model of the rule by tests/cache) for both formats, both row dtypes, random bit
// patterns (NaN, infinities) and normal values, on both kernel paths (16-byte accesses, or one element
// at a time for odd sizes, padded rows and misaligned pages); a graph captured once replays with a new
// k_scale; a slot past the cache is recorded and never written (guard pages around the cache).

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cuda_handles.h"
#include "device.h"
#include "fp8_write_case.h"
#include "openmla/cache.h"
#include "openmla/error.h"

namespace openmla::test {
namespace {

const Device kGpu{DeviceType::cuda, 0};

// An Fp8WriteCase's arrays on the GPU, the cache one guard page into an allocation with a canary page
// before and after it.
struct DeviceFp8Write {
  DeviceBuffer kv_c, k_pe, slot_mapping, k_cache, scale, status;
  int64_t guard = 0;  // bytes before (and after) the cache

  explicit DeviceFp8Write(Fp8WriteCase& c)
      : kv_c(upload_vector(c.rows.kv_c)),
        k_pe(upload_vector(c.rows.k_pe)),
        slot_mapping(upload_vector(c.rows.slot_mapping)),
        scale(4),
        status(kWriteStatusBytes),
        guard(c.page_stride()) {
    std::vector<uint8_t> block(static_cast<size_t>(guard), c.k_cache.empty() ? uint8_t{0} : c.k_cache[0]);
    block.insert(block.end(), c.k_cache.begin(), c.k_cache.end());
    block.insert(block.end(), static_cast<size_t>(guard), block.front());
    k_cache = upload_vector(block);
    scale.upload(&c.scale, 4);
    reset_status(Buffer{status.data(), kWriteStatusBytes, kGpu});
  }

  WriteCacheArgs args(Fp8WriteCase& c, cudaStream_t stream = nullptr) const {
    WriteCacheArgs a = c.args();
    a.kv_c = on_gpu(a.kv_c, kv_c.data());
    a.k_pe = on_gpu(a.k_pe, k_pe.data());
    a.slot_mapping = on_gpu(a.slot_mapping, slot_mapping.data());
    a.k_cache = on_gpu(a.k_cache, k_cache.as<uint8_t>() + guard);
    if (c.format == CacheFormat::fp8_per_tensor) {
      a.k_scale = on_gpu(a.k_scale, scale.data());
    }
    a.status = Buffer{status.data(), kWriteStatusBytes, kGpu};
    a.stream = stream;
    return a;
  }

  // The whole allocation: guard, cache, guard.
  std::vector<uint8_t> block(const Fp8WriteCase& c) const {
    return download_vector<uint8_t>(k_cache, c.k_cache.size() + 2 * static_cast<size_t>(guard));
  }
  std::vector<uint8_t> cache(const Fp8WriteCase& c) const {
    return download_vector<uint8_t>(k_cache, c.k_cache.size(), guard);
  }
};

DecodeStatus status_of(const DeviceFp8Write& d) {
  return read_status(Buffer{d.status.data(), kWriteStatusBytes, kGpu});
}

// The first byte where the GPU's cache differs from the CPU's, or "equal".
std::string first_difference(const std::vector<uint8_t>& gpu, const std::vector<uint8_t>& cpu) {
  for (size_t i = 0; i < cpu.size(); ++i) {
    if (gpu[i] != cpu[i]) {
      return "byte " + std::to_string(i) + ": gpu " + std::to_string(gpu[i]) + ", cpu " + std::to_string(cpu[i]);
    }
  }
  return "equal";
}

const Fp8WriteShape kShapes[] = {
    // 16-byte accesses
    {"per_tensor_bf16_bits", CacheFormat::fp8_per_tensor, DType::bf16, RowValues::bits, 300, 512, 64, 8, 64, 0.37f, 0,
     0},
    {"per_tensor_fp16_normal", CacheFormat::fp8_per_tensor, DType::fp16, RowValues::normal, 300, 512, 64, 8, 64,
     1.0f / 64, 0, 0},
    {"per_tensor_bf16_padded", CacheFormat::fp8_per_tensor, DType::bf16, RowValues::normal, 100, 512, 64, 3, 64,
     2.5e-3f, 8, 8},
    {"token656_bf16_bits", CacheFormat::fp8_656, DType::bf16, RowValues::bits, 300, 512, 64, 8, 64, 1.0f, 0, 0},
    {"token656_fp16_normal", CacheFormat::fp8_656, DType::fp16, RowValues::normal, 300, 512, 64, 8, 64, 1.0f, 0, 0},
    {"token656_bf16_normal_uint8", CacheFormat::fp8_656, DType::bf16, RowValues::normal, 100, 512, 64, 3, 64, 1.0f, 8,
     16, DType::uint8},
    // one element at a time
    {"per_tensor_fp16_odd_sizes", CacheFormat::fp8_per_tensor, DType::fp16, RowValues::bits, 50, 24, 5, 4, 16, 3.0f, 0,
     1},
    {"per_tensor_bf16_odd_rows", CacheFormat::fp8_per_tensor, DType::bf16, RowValues::normal, 100, 512, 64, 3, 64,
     0.01f, 3, 0},
    {"token656_bf16_odd_rows", CacheFormat::fp8_656, DType::bf16, RowValues::normal, 100, 512, 64, 3, 64, 1.0f, 3, 0},
    {"token656_fp16_odd_pages", CacheFormat::fp8_656, DType::fp16, RowValues::bits, 100, 512, 64, 3, 16, 1.0f, 0, 33},
};

class GpuFp8WriteCache : public ::testing::TestWithParam<Fp8WriteShape> {};

TEST_P(GpuFp8WriteCache, EqualsTheCpuBytewise) {
  OPENMLA_REQUIRE_GPU();
  const Fp8WriteShape& s = GetParam();
  Fp8WriteCase c = make_fp8_write_case(s, 40);
  for (size_t t = 0; t < c.rows.slot_mapping.size(); t += 7) {
    c.rows.slot_mapping[t] = -1;
  }
  const DeviceFp8Write d(c);
  write_cache(d.args(c));
  SUPPORT_CUDA(cudaDeviceSynchronize());
  const std::vector<uint8_t> gpu = d.cache(c);
  const std::vector<uint8_t> before = c.k_cache;
  write_cache(c.args());
  ASSERT_NE(c.k_cache, before) << "the case writes nothing";
  EXPECT_EQ(first_difference(gpu, c.k_cache), "equal");
  EXPECT_EQ(status_of(d).code, StatusCode::ok);
}

INSTANTIATE_TEST_SUITE_P(Shapes, GpuFp8WriteCache, ::testing::ValuesIn(kShapes),
                         [](const ::testing::TestParamInfo<Fp8WriteShape>& shape) {
                           return std::string(shape.param.name);
                         });

// The kernel reads k_scale when it runs: a graph captured once writes with the scale of each replay.
TEST(GpuFp8WriteCacheGraph, ReplaysWithANewScale) {
  OPENMLA_REQUIRE_GPU();
  Fp8WriteCase c =
      make_fp8_write_case(CacheFormat::fp8_per_tensor, DType::bf16, RowValues::normal, 128, 512, 64, 4, 64, 0.5f, 41);
  DeviceFp8Write d(c);
  const support::Stream owned = support::make_stream();
  cudaStream_t stream = owned.get();
  SUPPORT_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  write_cache(d.args(c, stream));
  const support::GraphExec exec = support::end_capture(stream);
  for (float scale : {0.5f, 0.001f}) {
    SCOPED_TRACE("scale " + std::to_string(scale));
    c.scale = scale;
    d.scale.upload(&c.scale, 4);
    SUPPORT_CUDA(cudaGraphLaunch(exec.get(), stream));
    SUPPORT_CUDA(cudaStreamSynchronize(stream));
    EXPECT_EQ(first_difference(d.cache(c), c.expected_cache()), "equal");
  }
}

TEST(GpuFp8WriteCacheSlots, PastTheCacheRecordedAndNeverWritten) {
  OPENMLA_REQUIRE_GPU();
  for (CacheFormat format : {CacheFormat::fp8_per_tensor, CacheFormat::fp8_656}) {
    SCOPED_TRACE(cache_format_name(format));
    Fp8WriteCase c = make_fp8_write_case(format, DType::bf16, RowValues::normal, 64, 512, 64, 2, 64, 0.01f, 42);
    c.rows.slot_mapping[40] = c.rows.slots();  // the first row after the cache, in the guard
    c.rows.slot_mapping[23] = INT64_MAX;
    const std::vector<uint8_t> want = c.expected_cache();
    const DeviceFp8Write d(c);
    const std::vector<uint8_t> before = d.block(c);
    write_cache(d.args(c));
    const std::vector<uint8_t> block = d.block(c);
    const auto guard = static_cast<size_t>(d.guard);
    EXPECT_TRUE(std::equal(block.begin(), block.begin() + guard, before.begin())) << "the guard before was written";
    EXPECT_TRUE(std::equal(block.end() - guard, block.end(), before.end() - guard)) << "the guard after was written";
    EXPECT_EQ(first_difference(d.cache(c), want), "equal");
    const DecodeStatus status = status_of(d);
    EXPECT_EQ(status.code, StatusCode::slot_out_of_range);
    EXPECT_EQ(status.batch, 23);
  }
}

TEST(GpuFp8WriteCacheSlots, ScaleInHostMemoryIsRefused) {
  OPENMLA_REQUIRE_GPU();
  Fp8WriteCase c =
      make_fp8_write_case(CacheFormat::fp8_per_tensor, DType::bf16, RowValues::normal, 4, 512, 64, 1, 64, 0.01f, 43);
  const DeviceFp8Write d(c);
  WriteCacheArgs args = d.args(c);
  args.k_scale.data = &c.scale;
  try {
    write_cache(args);
    ADD_FAILURE() << "write_cache accepted a k_scale in host memory";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "openmla: k_scale: expected memory of cuda:0, given host memory");
  }
  EXPECT_EQ(d.cache(c), c.k_cache);
}

}  // namespace
}  // namespace openmla::test
