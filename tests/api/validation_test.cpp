// Every validation rule of openmla::decode: the call throws openmla::Error whose message names the
// argument, what was expected and what was given, and out / lse keep their sentinel values.

#include <gtest/gtest.h>

#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "valid_decode.h"

namespace openmla::test {
namespace {

class Validation : public ValidDecode {};

TEST_F(Validation, TheValidCallSucceeds) {
  decode(args_);
  EXPECT_NE(output_.out[0], kOutSentinel);
  EXPECT_NE(output_.lse[0], kLseSentinel);
}

TEST_F(Validation, WrongRank) {
  args_.q.rank = 3;
  expect_rejected({"q: expected rank 4 [b, s_q, h_q, d_qk]", "given rank 3"});
}

TEST_F(Validation, WrongRankOfEveryTensor) {
  args_.lse.rank = 2;
  expect_rejected({"lse: expected rank 3 [b, h_q, s_q]", "given rank 2"});
  args_.lse.rank = 3;
  args_.block_table.rank = 1;
  expect_rejected({"block_table: expected rank 2", "given rank 1"});
  args_.block_table.rank = 2;
  args_.cache_seqlens.rank = 2;
  expect_rejected({"cache_seqlens: expected rank 1 [b]", "given rank 2"});
}

TEST_F(Validation, CacheHeadDimDiffersFromQ) {
  args_.k_cache.sizes[3] = 512;
  expect_rejected({"k_cache.size(3): expected 576 (d_qk from q), given 512"});
}

TEST_F(Validation, OutSizes) {
  args_.out.sizes[2] = 5;
  expect_rejected({"out.size(2): expected 4 (h_q from q), given 5"});
  args_.out.sizes[2] = 4;
  args_.out.sizes[3] = 576;
  expect_rejected({"out.size(3): expected 512 (d_v), given 576"});
}

TEST_F(Validation, LseSizes) {
  args_.lse.sizes[2] = 1;
  expect_rejected({"lse.size(2): expected 2 (s_q from q), given 1"});
}

TEST_F(Validation, BatchSizesDisagree) {
  args_.block_table.sizes[0] = 1;
  expect_rejected({"block_table.size(0): expected 2 (b from q), given 1"});
  args_.block_table.sizes[0] = 2;
  args_.cache_seqlens.sizes[0] = 3;
  expect_rejected({"cache_seqlens.size(0): expected 2 (b from q), given 3"});
}

TEST_F(Validation, NegativeSize) {
  args_.block_table.sizes[1] = -1;
  expect_rejected({"block_table: expected non-negative sizes", "given [2, -1]"});
}

TEST_F(Validation, DvLargerThanDqk) {
  args_.d_v = 600;
  args_.out.sizes[3] = 600;
  expect_rejected({"d_v: expected 1 <= d_v <= d_qk = 576, given 600"});
}

TEST_F(Validation, DvBelowOne) {
  args_.d_v = 0;
  args_.out.sizes[3] = 0;
  expect_rejected({"d_v: expected 1 <= d_v <= d_qk = 576, given 0"});
}

TEST_F(Validation, DtypeMismatchBetweenQAndCache) {
  args_.k_cache.dtype = DType::fp16;
  expect_rejected({"k_cache: expected dtype bf16, given fp16"});
}

TEST_F(Validation, DtypeOfEveryTensor) {
  args_.q.dtype = DType::int32;
  expect_rejected({"q: expected dtype bf16 or fp16 or fp32, given int32"});  // fp32: on the CPU only
  args_.q.dtype = DType::fp32;
  expect_rejected({"k_cache: expected dtype fp32, given bf16"});
  args_.q.dtype = DType::bf16;
  args_.out.dtype = DType::fp16;
  expect_rejected({"out: expected dtype bf16, given fp16"});
  args_.out.dtype = DType::bf16;
  args_.lse.dtype = DType::bf16;
  expect_rejected({"lse: expected dtype fp32, given bf16"});
  args_.lse.dtype = DType::fp32;
  args_.block_table.dtype = DType::fp32;
  expect_rejected({"block_table: expected dtype int32, given fp32"});
  args_.block_table.dtype = DType::int32;
  args_.cache_seqlens.dtype = DType::fp32;
  expect_rejected({"cache_seqlens: expected dtype int32, given fp32"});
}

TEST_F(Validation, LastDimNotContiguous) {
  args_.q.strides[3] = 2;
  expect_rejected({"q.stride(3): expected 1 (last dim contiguous), given 2"});
  args_.q.strides[3] = 1;
  args_.k_cache.strides[3] = 2;
  expect_rejected({"k_cache.stride(3): expected 1 (last dim contiguous), given 2"});
  args_.k_cache.strides[3] = 1;
  args_.out.strides[3] = 3;
  expect_rejected({"out.stride(3): expected 1 (last dim contiguous), given 3"});
}

TEST_F(Validation, HeadsNotAMultipleOfKvHeads) {
  args_.k_cache.sizes[2] = 3;
  expect_rejected({"q.size(2) (h_q): expected a multiple of h_kv = 3, given 4"});
}

TEST_F(Validation, SqBelowOne) {
  args_.q.sizes[1] = 0;
  expect_rejected({"q.size(1) (s_q): expected >= 1, given 0"});
}

TEST_F(Validation, NegativeSeqlen) {
  problem_.seqlens[1] = -1;
  expect_rejected({"cache_seqlens[1]: expected >= 0, given -1"});
}

TEST_F(Validation, SeqlenNeedsMorePagesThanTheBlockTableHolds) {
  // max_blocks_per_seq = 3 + 1 pages of 16 tokens: at most 64 tokens.
  ASSERT_EQ(problem_.max_blocks_per_seq, 4);
  problem_.seqlens[0] = 65;
  expect_rejected({"cache_seqlens[0]: expected <= max_blocks_per_seq * page_size = 64, given 65"});
}

TEST_F(Validation, BlockIndexOutOfRange) {
  const std::string range = "expected a page index in [0, " + std::to_string(problem_.num_blocks) + ")";
  problem_.block_table[1 * problem_.max_blocks_per_seq + 1] = static_cast<int32_t>(problem_.num_blocks);
  expect_rejected({"block_table[1, 1]", range, "given " + std::to_string(problem_.num_blocks)});
  problem_.block_table[1 * problem_.max_blocks_per_seq + 1] = -1;
  expect_rejected({"block_table[1, 1]", range, "given -1"});
}

TEST_F(Validation, PoisonPastTheUsedPagesIsNotAnError) {
  // Sequence 1 (17 tokens) uses pages 0 and 1 only: garbage after them is legal.
  problem_.block_table[1 * problem_.max_blocks_per_seq + 2] = -7;
  problem_.block_table[1 * problem_.max_blocks_per_seq + 3] = kPoisonPage;
  EXPECT_NO_THROW(decode(args_));
}

TEST_F(Validation, WorkspaceTooSmall) {
  args_.workspace.bytes = workspace_bytes_ - 1;
  expect_rejected({"workspace: expected >= " + std::to_string(workspace_bytes_) + " bytes (workspace_size)",
                   "given " + std::to_string(workspace_bytes_ - 1) + " bytes"});
}

TEST_F(Validation, WorkspaceMisaligned) {
  args_.workspace.data = static_cast<char*>(workspace_.data()) + 4;
  expect_rejected({"workspace: expected 256-byte aligned data"});
}

TEST_F(Validation, PlanForAnotherBatch) {
  plan_.config.batch = 3;
  expect_rejected({"plan.config.batch: expected the decode's batch = 2, given a plan made for 3"});
}

TEST_F(Validation, WorkspaceSizedForThePlansShapesButNotTheDecodes) {
  // A plan made with h_q = 1 serves this decode (h_q = 4), but the workspace must hold the decode's
  // partial rows: workspace_size of a config that describes the decode.
  PlanConfig small = plan_.config;
  small.h_q = 1;
  small.h_kv = 1;
  const int64_t too_few = workspace_size(small, 512);
  ASSERT_LT(too_few, workspace_bytes_);
  args_.workspace.bytes = too_few;
  expect_rejected({"workspace: expected >= " + std::to_string(workspace_bytes_) + " bytes (workspace_size)",
                   "given " + std::to_string(too_few) + " bytes"});
}

TEST_F(Validation, PlanBufferTooSmall) {
  const int64_t need = plan_.buffer.bytes;
  plan_.buffer.bytes = need - 8;
  expect_rejected({"plan.buffer: expected >= " + std::to_string(need) + " bytes (plan_buffer_size)",
                   "given " + std::to_string(need - 8) + " bytes"});
}

TEST_F(Validation, EmptyPlan) {
  const Plan empty{};
  args_.plan = &empty;
  expect_rejected({"plan: expected a Plan made by openmla::plan, given an empty Plan"});
}

TEST_F(Validation, NullPointers) {
  const std::vector<std::pair<std::string, std::function<void(DecodeArgs&)>>> cases = {
      {"q", [](DecodeArgs& a) { a.q.data = nullptr; }},
      {"k_cache", [](DecodeArgs& a) { a.k_cache.data = nullptr; }},
      {"block_table", [](DecodeArgs& a) { a.block_table.data = nullptr; }},
      {"cache_seqlens", [](DecodeArgs& a) { a.cache_seqlens.data = nullptr; }},
      {"out", [](DecodeArgs& a) { a.out.data = nullptr; }},
      {"lse", [](DecodeArgs& a) { a.lse.data = nullptr; }},
      {"workspace", [](DecodeArgs& a) { a.workspace.data = nullptr; }},
  };
  for (const auto& [name, corrupt] : cases) {
    SCOPED_TRACE(name);
    const DecodeArgs good = args_;
    corrupt(args_);
    expect_rejected({name + ": expected a non-null data pointer, given nullptr"});
    args_ = good;
  }
  args_.plan = nullptr;
  expect_rejected({"plan: expected a Plan made by openmla::plan, given nullptr"});
}

TEST_F(Validation, AnEmptyDimensionIsReportedBeforeANullPointer) {
  // A view with a zero-size dimension holds no element, so its pointer may be null (torch gives one):
  // the size rule it breaks is the message, whatever its pointer and strides.
  const struct {
    TensorView DecodeArgs::*view;
    int dim;
    const char* message;
  } cases[] = {{&DecodeArgs::k_cache, 1, "k_cache.size(1) (page_size): expected >= 1, given 0"},
               {&DecodeArgs::k_cache, 2, "k_cache.size(2) (h_kv): expected >= 1, given 0"},
               {&DecodeArgs::q, 2, "q.size(2) (h_q): expected >= 1, given 0"},
               {&DecodeArgs::q, 3, "q.size(3) (d_qk): expected >= 1, given 0"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.message);
    const DecodeArgs good = args_;
    TensorView& view = args_.*c.view;
    view.sizes[c.dim] = 0;
    view.data = nullptr;
    for (int64_t& stride : view.strides) {
      stride = 0;
    }
    expect_rejected({c.message});
    args_ = good;
  }
}

TEST_F(Validation, DeviceMismatch) {
  args_.k_cache.device = {DeviceType::cuda, 0};
  expect_rejected({"k_cache: expected device cpu, given cuda:0"});
  args_.k_cache.device = {};
  args_.workspace.device = {DeviceType::cuda, 1};
  expect_rejected({"workspace: expected device cpu, given cuda:1"});
  args_.workspace.device = {};
  plan_.config.device = {DeviceType::cuda, 0};
  expect_rejected({"plan.config.device: expected cpu, given cuda:0"});
}

TEST_F(Validation, NonFiniteSoftmaxScale) {
  args_.softmax_scale = std::numeric_limits<float>::infinity();
  expect_rejected({"softmax_scale: expected a finite value, given inf"});
}

// The CPU backend has one kernel: automatic or cpu; a CUDA kernel named for a CPU decode is refused.
TEST_F(Validation, CudaKernelOnTheCpu) {
  EXPECT_EQ(selected_kernel(args_), Kernel::cpu);
  args_.kernel = Kernel::cpu;
  EXPECT_EQ(selected_kernel(args_), Kernel::cpu);
  args_.kernel = Kernel::portable;
  EXPECT_THROW(selected_kernel(args_), Error);
  expect_rejected({"kernel: expected automatic or cpu for a decode on the CPU, given portable"});
  args_.kernel = Kernel::sm90;
  expect_rejected({"kernel: expected automatic or cpu for a decode on the CPU, given sm90"});
}

// selected_kernel checks the arguments as decode does.
TEST_F(Validation, SelectedKernelChecksArguments) {
  args_.q.rank = 3;
  EXPECT_THROW(selected_kernel(args_), Error);
}

TEST(KernelName, NamesEveryKernel) {
  EXPECT_STREQ(kernel_name(Kernel::automatic), "automatic");
  EXPECT_STREQ(kernel_name(Kernel::portable), "portable");
  EXPECT_STREQ(kernel_name(Kernel::sm90), "sm90");
  EXPECT_STREQ(kernel_name(Kernel::cpu), "cpu");
}

}  // namespace
}  // namespace openmla::test
