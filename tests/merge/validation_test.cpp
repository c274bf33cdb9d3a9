// Every validation rule of openmla::merge: the call throws openmla::Error with the full message
// "openmla: <argument>: expected ..., given ..." and out / lse keep every bit they had.

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

#include "openmla/error.h"
#include "openmla/merge.h"
#include "parts.h"

namespace openmla::test {
namespace {

// A valid merge of n = 3 parts, b = 2, s_q = 2, h_q = 4, d_v = 8 (bf16), that each case breaks.
struct Fixture {
  Results parts = make_results(DType::bf16, 3, 2, 2, 4, 8);
  Results merged = make_results(DType::bf16, 1, 2, 2, 4, 8);
  MergeArgs args{.out_parts = parts.stacked_out(),
                 .lse_parts = parts.stacked_lse(),
                 .out = merged.out_view(),
                 .lse = merged.lse_view()};

  Fixture() {
    for (float& l : parts.lse) {
      l = 0.5f;
    }
  }
};

struct Rule {
  const char* name;
  std::function<void(MergeArgs&)> which;  // breaks the fixture's arguments
  const char* message;
};

void PrintTo(const Rule& rule, std::ostream* os) { *os << rule.name; }

const Device kGpu{DeviceType::cuda, 0};

const Rule kRules[] = {
    {"NullOutParts", [](MergeArgs& a) { a.out_parts.data = nullptr; },
     "openmla: out_parts: expected a non-null data pointer, given nullptr"},
    {"OutPartsRank", [](MergeArgs& a) { a.out_parts.rank = 4; },
     "openmla: out_parts: expected rank 5 [n, b, s_q, h_q, d_v], given rank 4"},
    {"OutPartsDtype", [](MergeArgs& a) { a.out_parts.dtype = DType::int32; },
     "openmla: out_parts: expected dtype bf16 or fp16 or fp32, given int32"},
    {"LsePartsRank", [](MergeArgs& a) { a.lse_parts.rank = 3; },
     "openmla: lse_parts: expected rank 4 [n, b, h_q, s_q], given rank 3"},
    {"LsePartsDtype", [](MergeArgs& a) { a.lse_parts.dtype = DType::bf16; },
     "openmla: lse_parts: expected dtype fp32, given bf16"},
    {"OutRank", [](MergeArgs& a) { a.out.rank = 5; }, "openmla: out: expected rank 4 [b, s_q, h_q, d_v], given rank 5"},
    {"OutDtype", [](MergeArgs& a) { a.out.dtype = DType::int32; },
     "openmla: out: expected dtype bf16 or fp16 or fp32, given int32"},
    {"NullLse", [](MergeArgs& a) { a.lse.data = nullptr; },
     "openmla: lse: expected a non-null data pointer, given nullptr"},
    {"LseDtype", [](MergeArgs& a) { a.lse.dtype = DType::fp16; }, "openmla: lse: expected dtype fp32, given fp16"},
    {"NegativeSize", [](MergeArgs& a) { a.out_parts.sizes[2] = -1; },
     "openmla: out_parts: expected non-negative sizes [n, b, s_q, h_q, d_v], given [3, 2, -1, 4, 8]"},
    {"OtherDevice", [](MergeArgs& a) { a.lse.device = kGpu; }, "openmla: lse: expected device cpu, given cuda:0"},
    {"NoParts", [](MergeArgs& a) { a.out_parts.sizes[0] = 0; },
     "openmla: out_parts.size(0) (n): expected >= 1, given 0"},
    {"NoColumns", [](MergeArgs& a) { a.out_parts.sizes[4] = 0; },
     "openmla: out_parts.size(4) (d_v): expected >= 1, given 0"},
    {"LsePartsN", [](MergeArgs& a) { a.lse_parts.sizes[0] = 2; },
     "openmla: lse_parts.size(0): expected 3 (n from out_parts), given 2"},
    {"LsePartsB", [](MergeArgs& a) { a.lse_parts.sizes[1] = 1; },
     "openmla: lse_parts.size(1): expected 2 (b from out_parts), given 1"},
    {"LsePartsH", [](MergeArgs& a) { a.lse_parts.sizes[2] = 2; },
     "openmla: lse_parts.size(2): expected 4 (h_q from out_parts), given 2"},
    {"LsePartsS", [](MergeArgs& a) { a.lse_parts.sizes[3] = 1; },
     "openmla: lse_parts.size(3): expected 2 (s_q from out_parts), given 1"},
    {"OutB", [](MergeArgs& a) { a.out.sizes[0] = 1; }, "openmla: out.size(0): expected 2 (b from out_parts), given 1"},
    {"OutS", [](MergeArgs& a) { a.out.sizes[1] = 1; },
     "openmla: out.size(1): expected 2 (s_q from out_parts), given 1"},
    {"OutH", [](MergeArgs& a) { a.out.sizes[2] = 2; },
     "openmla: out.size(2): expected 4 (h_q from out_parts), given 2"},
    {"OutD", [](MergeArgs& a) { a.out.sizes[3] = 4; },
     "openmla: out.size(3): expected 8 (d_v from out_parts), given 4"},
    {"LseB", [](MergeArgs& a) { a.lse.sizes[0] = 1; }, "openmla: lse.size(0): expected 2 (b from out_parts), given 1"},
    {"LseH", [](MergeArgs& a) { a.lse.sizes[1] = 2; },
     "openmla: lse.size(1): expected 4 (h_q from out_parts), given 2"},
    {"LseS", [](MergeArgs& a) { a.lse.sizes[2] = 1; },
     "openmla: lse.size(2): expected 2 (s_q from out_parts), given 1"},
    {"OutPartsLastStride", [](MergeArgs& a) { a.out_parts.strides[4] = 2; },
     "openmla: out_parts.stride(4): expected 1 (last dim contiguous), given 2"},
    {"OutLastStride", [](MergeArgs& a) { a.out.strides[3] = -1; },
     "openmla: out.stride(3): expected 1 (last dim contiguous), given -1"},
    {"MisalignedOutParts", [](MergeArgs& a) { a.out_parts.data = static_cast<char*>(a.out_parts.data) + 1; },
     "openmla: out_parts: expected data aligned to its element size (2 bytes), given a misaligned pointer"},
    {"MisalignedLse", [](MergeArgs& a) { a.lse.data = static_cast<char*>(a.lse.data) + 2; },
     "openmla: lse: expected data aligned to its element size (4 bytes), given a misaligned pointer"},
    {"OutOverlapsItself", [](MergeArgs& a) { a.out.strides[2] = 0; },
     "openmla: out: expected strides under which no two elements share memory, given strides [64, 32, 0, 1] "
     "for sizes [2, 2, 4, 8]"},
    {"OutRowsInterleave", [](MergeArgs& a) { a.out.strides[0] = 4; },
     "openmla: out: expected strides under which no two elements share memory, given strides [4, 32, 8, 1] "
     "for sizes [2, 2, 4, 8]"},
    {"LseOverlapsItself", [](MergeArgs& a) { a.lse.strides[0] = 3; },
     "openmla: lse: expected strides under which no two elements share memory, given strides [3, 2, 1] "
     "for sizes [2, 4, 2]"},
    {"OutIsLse", [](MergeArgs& a) { a.lse.data = a.out.data; },
     "openmla: out: expected memory that no input or other output shares, given memory overlapping lse"},
    {"OutInsideOutParts",
     [](MergeArgs& a) { a.out.data = static_cast<char*>(a.out_parts.data) + a.out_parts.strides[0] * 2; },
     "openmla: out: expected memory that no input or other output shares, given memory overlapping out_parts"},
    {"OutInsideLseParts", [](MergeArgs& a) { a.out.data = a.lse_parts.data; },
     "openmla: out: expected memory that no input or other output shares, given memory overlapping lse_parts"},
    {"LseInsideOutParts", [](MergeArgs& a) { a.lse.data = static_cast<char*>(a.out_parts.data) + 64; },
     "openmla: lse: expected memory that no input shares, given memory overlapping out_parts"},
    {"LseIsALsePart", [](MergeArgs& a) { a.lse.data = static_cast<float*>(a.lse_parts.data) + a.lse_parts.strides[0]; },
     "openmla: lse: expected memory that no input shares, given memory overlapping lse_parts"},
    {"SpanPast64Bits", [](MergeArgs& a) { a.out_parts.strides[0] = INT64_MAX / 2; },
     "openmla: out_parts: expected sizes and strides within the address space, given sizes [3, 2, 2, 4, 8] and "
     "strides [4611686018427387903, 64, 32, 8, 1]"},
#ifndef OPENMLA_WITH_CUDA
    {"CudaWithoutBackend",
     [](MergeArgs& a) { a.out_parts.device = a.lse_parts.device = a.out.device = a.lse.device = kGpu; },
     "openmla: out_parts.device: expected cpu (this build of openmla has no CUDA backend), given cuda:0"},
#endif
};

class MergeValidation : public ::testing::TestWithParam<Rule> {};

TEST_P(MergeValidation, RejectsAndWritesNothing) {
  Fixture f;
  GetParam().which(f.args);
  const Results before = f.merged;
  try {
    merge(f.args);
    ADD_FAILURE() << "merge accepted the arguments";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), GetParam().message);
  }
  EXPECT_EQ(f.merged.out, before.out) << "out was written";
  EXPECT_EQ(f.merged.lse, before.lse) << "lse was written";
}

INSTANTIATE_TEST_SUITE_P(Cpu, MergeValidation, ::testing::ValuesIn(kRules),
                         [](const ::testing::TestParamInfo<Rule>& rule) { return std::string(rule.param.name); });

TEST(MergeValidationBaseline, TheValidCallSucceeds) {
  Fixture f;
  merge(f.args);
  EXPECT_EQ(f.merged.lse[0], 0.5f + std::log(3.0f));
}

}  // namespace
}  // namespace openmla::test
