// openmla::write_cache on the GPU: bitwise the CPU backend's cache for both dtypes and both kernel paths
// (16-byte chunks, or one element for odd sizes and strides); more tokens than the grid holds; an
// out-of-range slot skipped, never written (guard pages of canary around the cache) and recorded with
// the lowest offending token, sticky until reset_status; no status buffer; capture in a CUDA graph with
// the reset; zero tokens; the device checks.

#include "openmla/cache.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cuda_handles.h"
#include "device.h"
#include "openmla/error.h"
#include "write_case.h"

namespace openmla::test {
namespace {

const Device kGpu{DeviceType::cuda, 0};

// A WriteCase's arrays on the GPU, the cache `guard_pages` pages into an allocation that holds that many
// canary pages before and after it.
struct DeviceWrite {
  DeviceBuffer kv_c, k_pe, slot_mapping, k_cache, status;
  int64_t guard_elements = 0;  // canary elements before (and after) the cache

  DeviceWrite(WriteCase& c, int64_t guard_pages)
      : kv_c(upload_vector(c.kv_c)),
        k_pe(upload_vector(c.k_pe)),
        slot_mapping(upload_vector(c.slot_mapping)),
        status(kWriteStatusBytes),
        guard_elements(guard_pages * c.page_stride()) {
    const uint16_t canary = c.k_cache.empty() ? uint16_t{0} : c.k_cache[0];  // make_write_case fills it
    std::vector<uint16_t> block(static_cast<size_t>(guard_elements), canary);
    block.insert(block.end(), c.k_cache.begin(), c.k_cache.end());
    block.insert(block.end(), static_cast<size_t>(guard_elements), canary);
    k_cache = upload_vector(block);
    reset_status(Buffer{status.data(), kWriteStatusBytes, kGpu});
  }

  WriteCacheArgs args(WriteCase& c, cudaStream_t stream = nullptr) const {
    return WriteCacheArgs{.kv_c = on_gpu(c.kv_c_view(), kv_c.data()),
                          .k_pe = on_gpu(c.k_pe_view(), k_pe.data()),
                          .slot_mapping = on_gpu(c.slot_mapping_view(), slot_mapping.data()),
                          .k_cache = on_gpu(c.k_cache_view(), k_cache.as<uint16_t>() + guard_elements),
                          .status = Buffer{status.data(), kWriteStatusBytes, kGpu},
                          .stream = stream};
  }

  // The whole allocation: guards, cache, guards.
  std::vector<uint16_t> block(const WriteCase& c) const {
    return download_vector<uint16_t>(k_cache, c.k_cache.size() + 2 * static_cast<size_t>(guard_elements));
  }
  std::vector<uint16_t> cache(const WriteCase& c) const {
    return download_vector<uint16_t>(k_cache, c.k_cache.size(), guard_elements * 2);
  }
};

DecodeStatus status_of(const DeviceWrite& d) { return read_status(Buffer{d.status.data(), kWriteStatusBytes, kGpu}); }

struct Shape {
  DType dtype;
  int64_t tokens, d_v, d_rope, num_blocks, page_size, row_pad, page_pad;
};

TEST(GpuWriteCache, EqualsTheCpuBitwise) {
  OPENMLA_REQUIRE_GPU();
  const Shape shapes[] = {
      {DType::bf16, 300, 512, 64, 8, 64, 0, 0},  // 16-byte chunks
      {DType::fp16, 300, 512, 64, 8, 64, 0, 0},
      {DType::bf16, 100, 512, 64, 3, 64, 8, 8},  // padded rows and pages, still 16-byte aligned
      {DType::fp16, 100, 512, 64, 3, 64, 3, 0},  // rows of 515 / 67 elements: one element at a time
      {DType::bf16, 50, 24, 5, 4, 16, 0, 1},     // odd sizes
      {DType::fp16, 40, 64, 0, 2, 32, 0, 0},     // no RoPE part
  };
  uint64_t seed = 10;
  for (const Shape& s : shapes) {
    SCOPED_TRACE(std::string(dtype_name(s.dtype)) + " d_v " + std::to_string(s.d_v) + " d_rope " +
                 std::to_string(s.d_rope) + " pads " + std::to_string(s.row_pad) + "/" + std::to_string(s.page_pad));
    WriteCase c =
        make_write_case(s.dtype, s.tokens, s.d_v, s.d_rope, s.num_blocks, s.page_size, seed++, s.row_pad, s.page_pad);
    for (size_t t = 0; t < c.slot_mapping.size(); t += 7) {
      c.slot_mapping[t] = -1;
    }
    const DeviceWrite d(c, 1);
    write_cache(d.args(c));
    SUPPORT_CUDA(cudaDeviceSynchronize());
    const std::vector<uint16_t> gpu = d.cache(c);
    write_cache(WriteCacheArgs{.kv_c = c.kv_c_view(),
                               .k_pe = c.k_pe_view(),
                               .slot_mapping = c.slot_mapping_view(),
                               .k_cache = c.k_cache_view()});
    EXPECT_TRUE(gpu == c.k_cache);
    EXPECT_EQ(status_of(d).code, StatusCode::ok);
  }
}

TEST(GpuWriteCache, MoreTokensThanTheGridHolds) {
  OPENMLA_REQUIRE_GPU();
  WriteCase c = make_write_case(DType::bf16, 300000, 8, 8, 4700, 64, 3);  // 65536 blocks of 4 warps: 262144 tokens
  const std::vector<uint16_t> want = c.expected_cache();
  const DeviceWrite d(c, 0);
  write_cache(d.args(c));
  EXPECT_TRUE(d.cache(c) == want);
}

TEST(GpuWriteCache, SlotPastTheCacheIsRecordedAndNeverWritten) {
  OPENMLA_REQUIRE_GPU();
  WriteCase c = make_write_case(DType::bf16, 64, 512, 64, 2, 64, 5);
  c.slot_mapping[40] = c.slots();  // the first row after the cache, in the guard page
  c.slot_mapping[23] = INT64_MAX;
  c.slot_mapping[57] = c.slots() + 64;
  const std::vector<uint16_t> want = c.expected_cache();
  const DeviceWrite d(c, 2);
  const std::vector<uint16_t> before = d.block(c);
  write_cache(d.args(c));
  const std::vector<uint16_t> block = d.block(c);
  const auto guard = static_cast<size_t>(d.guard_elements);
  EXPECT_TRUE(std::equal(block.begin(), block.begin() + guard, before.begin())) << "the guard before was written";
  EXPECT_TRUE(std::equal(block.end() - guard, block.end(), before.end() - guard)) << "the guard after was written";
  EXPECT_TRUE(d.cache(c) == want);
  const DecodeStatus status = status_of(d);
  EXPECT_EQ(status.code, StatusCode::slot_out_of_range);
  EXPECT_EQ(status.batch, 23);
  EXPECT_THROW(check_status(status), Error);

  // The record stays through a clean call, and reset_status clears it.
  c.slot_mapping[23] = c.slot_mapping[40] = c.slot_mapping[57] = -1;
  const DeviceBuffer clean = upload_vector(c.slot_mapping);
  WriteCacheArgs args = d.args(c);
  args.slot_mapping.data = clean.data();
  write_cache(args);
  EXPECT_EQ(status_of(d).batch, 23);
  reset_status(args.status);
  EXPECT_EQ(status_of(d).code, StatusCode::ok);
}

TEST(GpuWriteCache, WithoutAStatusBufferOutOfRangeSlotsAreSkipped) {
  OPENMLA_REQUIRE_GPU();
  WriteCase c = make_write_case(DType::fp16, 16, 512, 64, 1, 16, 6);
  c.slot_mapping[3] = 16;
  const std::vector<uint16_t> want = c.expected_cache();
  const DeviceWrite d(c, 1);
  const std::vector<uint16_t> before = d.block(c);
  WriteCacheArgs args = d.args(c);
  args.status = Buffer{};
  write_cache(args);
  const std::vector<uint16_t> block = d.block(c);
  const auto guard = static_cast<size_t>(d.guard_elements);
  EXPECT_TRUE(std::equal(block.end() - guard, block.end(), before.end() - guard));
  EXPECT_TRUE(d.cache(c) == want);
}

TEST(GpuWriteCache, CapturedWithItsResetAndReplayed) {
  OPENMLA_REQUIRE_GPU();
  WriteCase c = make_write_case(DType::bf16, 128, 512, 64, 4, 64, 7);
  WriteCase next = make_write_case(DType::bf16, 128, 512, 64, 4, 64, 8);
  next.k_cache = c.k_cache;
  next.slot_mapping[9] = next.slots() + 3;  // recorded by the replay
  DeviceWrite d(c, 0);
  const support::Stream owned = support::make_stream();
  cudaStream_t stream = owned.get();
  const WriteCacheArgs args = d.args(c, stream);
  SUPPORT_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  reset_status(args.status, stream);
  write_cache(args);
  const support::GraphExec exec = support::end_capture(stream);
  EXPECT_TRUE(d.cache(c) == c.k_cache) << "capture ran the kernel";

  d.kv_c.upload(next.kv_c.data(), d.kv_c.bytes());
  d.k_pe.upload(next.k_pe.data(), d.k_pe.bytes());
  d.slot_mapping.upload(next.slot_mapping.data(), d.slot_mapping.bytes());
  SUPPORT_CUDA(cudaGraphLaunch(exec.get(), stream));
  SUPPORT_CUDA(cudaStreamSynchronize(stream));
  EXPECT_TRUE(d.cache(c) == next.expected_cache());
  EXPECT_EQ(read_status(args.status, stream).batch, 9);

  d.slot_mapping.upload(c.slot_mapping.data(), d.slot_mapping.bytes());
  SUPPORT_CUDA(cudaGraphLaunch(exec.get(), stream));
  EXPECT_EQ(read_status(args.status, stream).code, StatusCode::ok) << "the replayed reset";
}

TEST(GpuWriteCache, ZeroTokensWithNullPointers) {
  OPENMLA_REQUIRE_GPU();
  WriteCase c = make_write_case(DType::bf16, 0, 512, 64, 1, 64, 9);
  const DeviceWrite d(c, 0);
  WriteCacheArgs args = d.args(c);
  args.kv_c.data = args.k_pe.data = args.slot_mapping.data = nullptr;
  write_cache(args);
  EXPECT_TRUE(d.cache(c) == c.k_cache);
  EXPECT_EQ(status_of(d).code, StatusCode::ok);
}

TEST(GpuWriteCache, RefusesHostMemory) {
  OPENMLA_REQUIRE_GPU();
  WriteCase c = make_write_case(DType::bf16, 4, 512, 64, 1, 64, 11);
  const DeviceWrite d(c, 0);
  WriteCacheArgs args = d.args(c);
  args.slot_mapping.data = c.slot_mapping.data();
  try {
    write_cache(args);
    ADD_FAILURE() << "write_cache accepted host memory";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "openmla: slot_mapping: expected memory of cuda:0, given host memory");
  }
  EXPECT_TRUE(d.cache(c) == c.k_cache);
}

}  // namespace
}  // namespace openmla::test
