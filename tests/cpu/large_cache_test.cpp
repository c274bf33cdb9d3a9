// 64-bit offsets: a cache of more than 2^32 elements (8 GiB of bf16) whose used pages all lie past
// element 2^32, so a 32-bit offset anywhere (signed or not) reads the wrong page. The cache is mapped
// with MAP_NORESERVE: only the pages the sequences use are ever touched.

#include <gtest/gtest.h>

#include <new>

#include "check.h"
#include "host_decode.h"
#include "reference.h"

namespace openmla::test {
namespace {

TEST(LargeCache, PagesPast4GiBElements) {
  constexpr int64_t kPageSize = 64;
  constexpr int64_t kDQk = 576;
  constexpr int64_t kPageElements = kPageSize * kDQk;
  const int64_t leading = ((int64_t{1} << 32) + kPageElements - 1) / kPageElements;
  const ProblemSpec spec{.b = 3,
                         .s_q = 2,
                         .h_q = 8,
                         .s_k = 300,
                         .varlen = true,
                         .causal = true,
                         .page_size = kPageSize,
                         .d_qk = kDQk,
                         .seed = 31,
                         .extra_pages = 2,
                         .leading_pages = leading};
  Problem problem;
  try {
    problem = make_problem(spec);
  } catch (const std::bad_alloc&) {
    GTEST_SKIP() << "could not map a cache of " << (leading + 32) * kPageElements * 2
                 << " bytes (mmap with MAP_NORESERVE failed; overcommit disabled?)";
  }
  ASSERT_GT(problem.num_blocks * kPageElements, int64_t{1} << 32);
  for (int64_t i = 0; i < spec.b; ++i) {
    ASSERT_GE(problem.block_table[i * problem.max_blocks_per_seq], leading);
  }
  const Output output = host_decode(problem);
  EXPECT_TRUE(matches(reference_decode(problem), output.out_view(), output.lse_view()));
}

}  // namespace
}  // namespace openmla::test
