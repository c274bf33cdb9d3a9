// openmla::write_cache on the CPU: each token's [kv_c, k_pe] lands bit for bit in its slot's row and
// nothing else of the cache changes; negative slots are skipped; strided views, both dtypes, several
// page sizes; zero tokens; an out-of-range slot throws naming its token and writes nothing; the status
// buffer is left alone on the CPU and reset_status / read_status work on it.

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "openmla/cache.h"
#include "openmla/error.h"
#include "write_case.h"

namespace openmla::test {
namespace {

WriteCacheArgs args_of(WriteCase& c) {
  return WriteCacheArgs{
      .kv_c = c.kv_c_view(), .k_pe = c.k_pe_view(), .slot_mapping = c.slot_mapping_view(), .k_cache = c.k_cache_view()};
}

// The first element where two caches differ, or "equal".
std::string first_difference(const std::vector<uint16_t>& got, const std::vector<uint16_t>& want) {
  for (size_t i = 0; i < want.size(); ++i) {
    if (got[i] != want[i]) {
      return "element " + std::to_string(i) + ": got " + std::to_string(got[i]) + ", want " + std::to_string(want[i]);
    }
  }
  return "equal";
}

struct Shape {
  DType dtype;
  int64_t tokens, d_v, d_rope, num_blocks, page_size, row_pad, page_pad;
};

TEST(WriteCache, CopiesEachTokenIntoItsSlotAndNothingElse) {
  const Shape shapes[] = {
      {DType::bf16, 37, 512, 64, 3, 64, 0, 0},   // DeepSeek's rows
      {DType::fp16, 20, 512, 64, 4, 16, 64, 8},  // kv_c and k_pe slices of a wider row, padded pages
      {DType::bf16, 9, 24, 5, 2, 7, 3, 1},       // odd sizes
      {DType::fp16, 6, 16, 0, 2, 4, 0, 0},       // no RoPE part
      {DType::bf16, 8, 32, 8, 1, 8, 0, 0},       // every slot of the cache
  };
  uint64_t seed = 1;
  for (const Shape& s : shapes) {
    SCOPED_TRACE(std::string(dtype_name(s.dtype)) + " tokens " + std::to_string(s.tokens) + " d_v " +
                 std::to_string(s.d_v) + " d_rope " + std::to_string(s.d_rope) + " page " +
                 std::to_string(s.page_size));
    WriteCase c =
        make_write_case(s.dtype, s.tokens, s.d_v, s.d_rope, s.num_blocks, s.page_size, seed++, s.row_pad, s.page_pad);
    const std::vector<uint16_t> want = c.expected_cache();
    ASSERT_NE(want, c.k_cache) << "the case writes nothing";
    write_cache(args_of(c));
    EXPECT_EQ(first_difference(c.k_cache, want), "equal");
  }
}

TEST(WriteCache, SkipsNegativeSlots) {
  WriteCase c = make_write_case(DType::bf16, 6, 32, 8, 2, 4, 7);
  c.slot_mapping = {-1, 3, INT64_MIN, 5, -4, 0};
  const std::vector<uint16_t> before = c.k_cache;
  const std::vector<uint16_t> want = c.expected_cache();
  write_cache(args_of(c));
  EXPECT_EQ(first_difference(c.k_cache, want), "equal");
  // Exactly the rows of slots 3, 5 and 0 changed.
  for (int64_t slot = 0; slot < c.slots(); ++slot) {
    const auto row = c.k_cache.begin() + row_offset(c, slot);
    const bool changed = !std::equal(row, row + c.d_qk(), before.begin() + row_offset(c, slot));
    EXPECT_EQ(changed, slot == 3 || slot == 5 || slot == 0) << "slot " << slot;
  }
}

TEST(WriteCache, StridedSlotMapping) {
  WriteCase c = make_write_case(DType::bf16, 4, 16, 8, 2, 4, 11);
  std::vector<int64_t> interleaved = {c.slot_mapping[0], -9, c.slot_mapping[1], -9,
                                      c.slot_mapping[2], -9, c.slot_mapping[3], -9};
  const std::vector<uint16_t> want = c.expected_cache();
  WriteCacheArgs args = args_of(c);
  args.slot_mapping.data = interleaved.data();
  args.slot_mapping.strides[0] = 2;
  write_cache(args);
  EXPECT_EQ(first_difference(c.k_cache, want), "equal");
}

TEST(WriteCache, ZeroTokensWithNullPointersWritesNothing) {
  WriteCase c = make_write_case(DType::bf16, 0, 32, 8, 2, 4, 3);
  const std::vector<uint16_t> before = c.k_cache;
  WriteCacheArgs args = args_of(c);
  args.kv_c.data = nullptr;
  args.k_pe.data = nullptr;
  args.slot_mapping.data = nullptr;
  write_cache(args);
  EXPECT_EQ(c.k_cache, before);
}

TEST(WriteCache, SlotPastTheCacheThrowsNamingTheTokenAndWritesNothing) {
  WriteCase c = make_write_case(DType::bf16, 5, 32, 8, 2, 4, 5);
  c.slot_mapping[3] = c.slots();  // one past the last slot
  c.slot_mapping[4] = INT64_MAX;
  const std::vector<uint16_t> before = c.k_cache;
  try {
    write_cache(args_of(c));
    ADD_FAILURE() << "write_cache accepted a slot past the cache";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "openmla: slot_mapping[3]: expected a slot below num_blocks * page_size = 8, or a negative one "
                 "(skip), given 8");
  }
  EXPECT_EQ(c.k_cache, before) << "tokens 0..2 were written before the check";
}

TEST(WriteCache, EmptyCacheRefusesEveryNonNegativeSlot) {
  WriteCase c = make_write_case(DType::bf16, 2, 32, 8, 0, 4, 5);
  c.slot_mapping = {-1, 0};
  WriteCacheArgs args = args_of(c);
  args.k_cache.data = nullptr;
  EXPECT_THROW(write_cache(args), Error);
  c.slot_mapping = {-1, -2};
  EXPECT_NO_THROW(write_cache(args));
}

TEST(WriteCache, CpuLeavesTheStatusBufferAloneAndResetStatusWorks) {
  WriteCase c = make_write_case(DType::bf16, 3, 32, 8, 2, 4, 9);
  int32_t word = 12345;
  WriteCacheArgs args = args_of(c);
  args.status = Buffer{&word, sizeof(word), Device{}};
  write_cache(args);
  EXPECT_EQ(word, 12345);
  reset_status(args.status);
  const DecodeStatus status = read_status(args.status);
  EXPECT_EQ(status.code, StatusCode::ok);
  EXPECT_EQ(status.batch, -1);
  EXPECT_NO_THROW(check_status(status));
}

TEST(WriteCache, CheckStatusDescribesAnOutOfRangeSlot) {
  try {
    check_status(DecodeStatus{.code = StatusCode::slot_out_of_range, .batch = 17});
    ADD_FAILURE() << "check_status accepted an offence";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(),
                 "openmla: slot_mapping (write_cache device check, token 17): expected a slot below num_blocks * "
                 "page_size, or a negative one (skip), given one past the cache; that token was not written");
  }
}

TEST(WriteCache, ResetStatusValidatesItsBuffer) {
  int32_t word = 0;
  try {
    reset_status(Buffer{&word, 2, Device{}});
    ADD_FAILURE() << "reset_status accepted 2 bytes";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "openmla: status: expected >= 4 bytes, given 2 bytes");
  }
  EXPECT_THROW(reset_status(Buffer{}), Error);
  EXPECT_EQ(word, 0);
}

}  // namespace
}  // namespace openmla::test
