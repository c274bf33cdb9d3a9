// Every validation rule of openmla::write_cache: the call throws openmla::Error with the full message
// "openmla: <argument>: expected ..., given ..." and the cache keeps every bit it had.

#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "openmla/cache.h"
#include "openmla/error.h"
#include "refused.h"
#include "write_case.h"

namespace openmla::test {
namespace {

// A valid write of 4 tokens (d_v 32, d_rope 8, bf16) into a cache of 2 pages of 4 slots, with a status
// word, that each case breaks.
struct Fixture {
  WriteCase c = make_write_case(DType::bf16, 4, 32, 8, 2, 4, 21);
  int32_t word = 0;
  WriteCacheArgs args{.kv_c = c.kv_c_view(),
                      .k_pe = c.k_pe_view(),
                      .slot_mapping = c.slot_mapping_view(),
                      .k_cache = c.k_cache_view(),
                      .status = Buffer{&word, sizeof(word), Device{}}};
};

struct Rule {
  const char* name;
  std::function<void(WriteCacheArgs&)> which;  // breaks the fixture's arguments
  const char* message;
};

void PrintTo(const Rule& rule, std::ostream* os) { *os << rule.name; }

const Device kGpu{DeviceType::cuda, 0};

char* bytes(const TensorView& v) { return static_cast<char*>(v.data); }

const Rule kRules[] = {
    {"CacheRank", [](WriteCacheArgs& a) { a.k_cache.rank = 3; },
     "openmla: k_cache: expected rank 4 [num_blocks, page_size, h_kv, d_qk], given rank 3"},
    {"CacheDtype", [](WriteCacheArgs& a) { a.k_cache.dtype = DType::int32; },
     "openmla: k_cache: expected dtype bf16 or fp16 or fp32, given int32"},  // fp32: on the CPU only
    {"CacheNegativeSize", [](WriteCacheArgs& a) { a.k_cache.sizes[0] = -1; },
     "openmla: k_cache: expected non-negative sizes [num_blocks, page_size, h_kv, d_qk], given [-1, 4, 1, 40]"},
    {"KvcRank", [](WriteCacheArgs& a) { a.kv_c.rank = 3; },
     "openmla: kv_c: expected rank 2 [tokens, d_v], given rank 3"},
    {"KvcDtype", [](WriteCacheArgs& a) { a.kv_c.dtype = DType::fp16; },
     "openmla: kv_c: expected dtype bf16, given fp16"},
    {"KpeRank", [](WriteCacheArgs& a) { a.k_pe.rank = 1; },
     "openmla: k_pe: expected rank 2 [tokens, d_qk - d_v], given rank 1"},
    {"KpeDtype", [](WriteCacheArgs& a) { a.k_pe.dtype = DType::fp32; },
     "openmla: k_pe: expected dtype bf16, given fp32"},
    {"SlotsRank", [](WriteCacheArgs& a) { a.slot_mapping.rank = 2; },
     "openmla: slot_mapping: expected rank 1 [tokens], given rank 2"},
    {"SlotsInt32", [](WriteCacheArgs& a) { a.slot_mapping.dtype = DType::int32; },
     "openmla: slot_mapping: expected dtype int64, given int32"},
    {"KvcOnAnotherDevice", [](WriteCacheArgs& a) { a.kv_c.device = kGpu; },
     "openmla: kv_c: expected device cpu, given cuda:0"},
    {"SlotsOnAnotherDevice", [](WriteCacheArgs& a) { a.slot_mapping.device = kGpu; },
     "openmla: slot_mapping: expected device cpu, given cuda:0"},
    {"NoLatentColumns", [](WriteCacheArgs& a) { a.kv_c.sizes[1] = 0; },
     "openmla: kv_c.size(1) (d_v): expected >= 1, given 0"},
    {"TooManyTokens",
     [](WriteCacheArgs& a) { a.kv_c.sizes[0] = a.k_pe.sizes[0] = a.slot_mapping.sizes[0] = kMaxWriteTokens + 1; },
     "openmla: kv_c.size(0) (tokens): expected <= 134217728, given 134217729"},
    {"ZeroPageSize", [](WriteCacheArgs& a) { a.k_cache.sizes[1] = 0; },
     "openmla: k_cache.size(1) (page_size): expected >= 1, given 0"},
    {"TwoHeads", [](WriteCacheArgs& a) { a.k_cache.sizes[2] = 2; },
     "openmla: k_cache.size(2): expected 1 (h_kv: one latent head), given 2"},
    {"RowWidth", [](WriteCacheArgs& a) { a.k_cache.sizes[3] = 39; },
     "openmla: k_cache.size(3): expected 40 (kv_c.size(1) + k_pe.size(1)), given 39"},
    {"KpeTokens", [](WriteCacheArgs& a) { a.k_pe.sizes[0] = 3; },
     "openmla: k_pe.size(0): expected 4 (tokens from kv_c), given 3"},
    {"SlotsTokens", [](WriteCacheArgs& a) { a.slot_mapping.sizes[0] = 5; },
     "openmla: slot_mapping.size(0): expected 4 (tokens from kv_c), given 5"},
    {"NullKvc", [](WriteCacheArgs& a) { a.kv_c.data = nullptr; },
     "openmla: kv_c: expected a non-null data pointer, given nullptr"},
    {"NullKpe", [](WriteCacheArgs& a) { a.k_pe.data = nullptr; },
     "openmla: k_pe: expected a non-null data pointer, given nullptr"},
    {"NullSlots", [](WriteCacheArgs& a) { a.slot_mapping.data = nullptr; },
     "openmla: slot_mapping: expected a non-null data pointer, given nullptr"},
    {"NullCache", [](WriteCacheArgs& a) { a.k_cache.data = nullptr; },
     "openmla: k_cache: expected a non-null data pointer, given nullptr"},
    {"KvcLastStride", [](WriteCacheArgs& a) { a.kv_c.strides[1] = 2; },
     "openmla: kv_c.stride(1): expected 1 (last dim contiguous), given 2"},
    {"KpeLastStride", [](WriteCacheArgs& a) { a.k_pe.strides[1] = -1; },
     "openmla: k_pe.stride(1): expected 1 (last dim contiguous), given -1"},
    {"CacheLastStride", [](WriteCacheArgs& a) { a.k_cache.strides[3] = 2; },
     "openmla: k_cache.stride(3): expected 1 (last dim contiguous), given 2"},
    {"MisalignedKvc", [](WriteCacheArgs& a) { a.kv_c.data = bytes(a.kv_c) + 1; },
     "openmla: kv_c: expected data aligned to its element size (2 bytes), given a misaligned pointer"},
    {"MisalignedSlots", [](WriteCacheArgs& a) { a.slot_mapping.data = bytes(a.slot_mapping) + 4; },
     "openmla: slot_mapping: expected data aligned to its element size (8 bytes), given a misaligned pointer"},
    {"MisalignedCache", [](WriteCacheArgs& a) { a.k_cache.data = bytes(a.k_cache) + 1; },
     "openmla: k_cache: expected data aligned to its element size (2 bytes), given a misaligned pointer"},
    {"StatusOnAnotherDevice", [](WriteCacheArgs& a) { a.status.device = kGpu; },
     "openmla: status: expected device cpu, given cuda:0"},
    {"StatusTooSmall", [](WriteCacheArgs& a) { a.status.bytes = 3; },
     "openmla: status: expected >= 4 bytes (kWriteStatusBytes), given 3 bytes"},
    {"MisalignedStatus", [](WriteCacheArgs& a) { a.status.data = static_cast<char*>(a.status.data) + 2; },
     "openmla: status: expected 4-byte aligned data, given a misaligned pointer"},
    {"CacheOverlapsItself", [](WriteCacheArgs& a) { a.k_cache.strides[0] = 3; },
     "openmla: k_cache: expected strides under which no two elements share memory, given strides [3, 40, 40, 1] "
     "for sizes [2, 4, 1, 40]"},
    {"CachePagesInterleave", [](WriteCacheArgs& a) { a.k_cache.strides[1] = 80; },
     "openmla: k_cache: expected strides under which no two elements share memory, given strides [160, 80, 40, 1] "
     "for sizes [2, 4, 1, 40]"},
    {"KvcInsideCache", [](WriteCacheArgs& a) { a.kv_c.data = bytes(a.k_cache) + 160; },
     "openmla: k_cache: expected memory that no input or other output shares, given memory overlapping kv_c"},
    {"KpeInsideCache", [](WriteCacheArgs& a) { a.k_pe.data = a.k_cache.data; },
     "openmla: k_cache: expected memory that no input or other output shares, given memory overlapping k_pe"},
    {"SlotsInsideCache", [](WriteCacheArgs& a) { a.slot_mapping.data = bytes(a.k_cache) + 64; },
     "openmla: k_cache: expected memory that no input or other output shares, given memory overlapping "
     "slot_mapping"},
    {"StatusInsideCache", [](WriteCacheArgs& a) { a.status.data = bytes(a.k_cache) + 8; },
     "openmla: k_cache: expected memory that no input or other output shares, given memory overlapping status"},
    {"StatusInsideSlots", [](WriteCacheArgs& a) { a.status.data = bytes(a.slot_mapping) + 8; },
     "openmla: status: expected memory that no input shares, given memory overlapping slot_mapping"},
    {"SpanPast64Bits", [](WriteCacheArgs& a) { a.kv_c.strides[0] = INT64_MAX / 2; },
     "openmla: kv_c: expected sizes and strides within the address space, given sizes [4, 32] and strides "
     "[4611686018427387903, 1]"},
#ifndef OPENMLA_WITH_CUDA
    {"CudaWithoutBackend",
     [](WriteCacheArgs& a) {
       a.kv_c.device = a.k_pe.device = a.slot_mapping.device = a.k_cache.device = kGpu;
       a.status = Buffer{};
     },
     "openmla: k_cache.device: expected cpu (this build of openmla has no CUDA backend), given cuda:0"},
#endif
};

class WriteCacheValidation : public ::testing::TestWithParam<Rule> {};

TEST_P(WriteCacheValidation, RejectsAndWritesNothing) {
  Fixture f;
  GetParam().which(f.args);
  expect_refused_unwritten(f.args, f.c.k_cache, GetParam().message);
}

INSTANTIATE_TEST_SUITE_P(Cpu, WriteCacheValidation, ::testing::ValuesIn(kRules),
                         [](const ::testing::TestParamInfo<Rule>& rule) { return std::string(rule.param.name); });

TEST(WriteCacheValidationBaseline, TheValidCallWrites) {
  Fixture f;
  const std::vector<uint16_t> want = f.c.expected_cache();
  ASSERT_NE(want, f.c.k_cache);
  write_cache(f.args);
  EXPECT_EQ(f.c.k_cache, want);
}

TEST(WriteCacheValidationBaseline, AnEmptyStatusBufferIsAccepted) {
  Fixture f;
  f.args.status = Buffer{};
  EXPECT_NO_THROW(write_cache(f.args));
}

}  // namespace
}  // namespace openmla::test
