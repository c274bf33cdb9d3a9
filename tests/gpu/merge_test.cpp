// openmla::merge on the GPU: the same bits of NaN / +inf / 0 as the CPU backend and the same values
// within fp32 noise, for every dtype pair and both kernel paths (4 columns a lane, or 1 for odd
// sizes and strides); the float64 attention over the union of n = 1..8 disjoint key sets; a grid
// smaller than the rows; capture in a CUDA graph; two decodes over two page shares merged against one
// decode over the whole; the device checks.

#include "openmla/merge.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>

#include "check.h"
#include "device.h"
#include "openmla/error.h"
#include "parts.h"
#include "reference.h"
#include "reference_gpu.h"

namespace openmla::test {
namespace {

const Device kGpu{DeviceType::cuda, 0};

TensorView on_device(TensorView view, const DeviceBuffer& buffer) {
  view.data = buffer.data();
  view.device = kGpu;
  return view;
}

// Device copies of a Results' two arrays.
struct DeviceResults {
  DeviceBuffer out;
  DeviceBuffer lse;

  explicit DeviceResults(const Results& r) : out(r.out.size() * 4), lse(r.lse.size() * 4) {
    out.upload(r.out.data(), out.bytes());
    lse.upload(r.lse.data(), lse.bytes());
  }
  void download(Results& r) const {
    out.download(r.out.data(), out.bytes());
    lse.download(r.lse.data(), lse.bytes());
  }
};

Results merge_on_gpu(const Results& parts, DType out_dtype, cudaStream_t stream = nullptr) {
  Results merged = make_results(out_dtype, 1, parts.b, parts.s_q, parts.h_q, parts.d_v);
  const DeviceResults in(parts);
  const DeviceResults out(merged);
  merge(MergeArgs{.out_parts = on_device(parts.stacked_out(), in.out),
                  .lse_parts = on_device(parts.stacked_lse(), in.lse),
                  .out = on_device(merged.out_view(), out.out),
                  .lse = on_device(merged.lse_view(), out.lse),
                  .stream = stream});
  SUPPORT_CUDA(cudaStreamSynchronize(stream));
  out.download(merged);
  return merged;
}

// Two merges of the same parts agree: the same NaN, inf and zero elements, values within fp32
// rounding noise (the device's expf and logf are not the host's) and one ulp of the out dtype.
::testing::AssertionResult agree(const Results& gpu, const Results& cpu) {
  const double ulp = cpu.dtype == DType::fp32 ? 0x1p-22 : cpu.dtype == DType::fp16 ? 0x1p-10 : 0x1p-7;
  for (size_t r = 0; r < cpu.lse.size(); ++r) {
    const float g = gpu.lse[r];
    const float c = cpu.lse[r];
    const bool same_kind = std::isnan(g) == std::isnan(c) && std::isinf(g) == std::isinf(c);
    if (!same_kind || (std::isfinite(c) && std::fabs(g - c) > 1e-6f * (1.0f + std::fabs(c))) ||
        (std::isinf(c) && g != c)) {
      return ::testing::AssertionFailure() << "lse row " << r << ": gpu " << g << ", cpu " << c;
    }
  }
  for (int64_t e = 0; e < cpu.b * cpu.s_q * cpu.h_q * cpu.d_v; ++e) {
    const double g = gpu.out_at(e);
    const double c = cpu.out_at(e);
    const bool bad = std::isnan(g) != std::isnan(c) || (c == 0.0) != (g == 0.0) ||
                     (!std::isnan(c) && std::fabs(g - c) > 1e-6 + ulp * std::fabs(c));
    if (bad) {
      return ::testing::AssertionFailure() << "out element " << e << ": gpu " << g << ", cpu " << c;
    }
  }
  return ::testing::AssertionSuccess();
}

// Random parts with every special case: +inf and -inf parts, a row no part saw, NaN lse, NaN out.
Results special_parts(DType dtype, int64_t d_v, uint64_t seed) {
  Results p = random_parts(dtype, 4, 3, 2, 5, d_v, seed);
  p.lse[p.lse_index(1, 0, 0, 0)] = INFINITY;
  p.lse[p.lse_index(2, 0, 1, 1)] = -INFINITY;
  for (int64_t k = 0; k < 4; ++k) {
    p.lse[p.lse_index(k, 1, 2, 0)] = INFINITY;
    p.set_out(p.out_index(k, 1, 0, 2, 0), NAN);  // not read: every part of that row has lse +inf
  }
  p.lse[p.lse_index(3, 2, 4, 1)] = NAN;
  p.set_out(p.out_index(0, 2, 0, 3, d_v - 1), NAN);
  return p;
}

TEST(GpuMerge, AgreesWithTheCpuForEveryDtypePairAndPath) {
  OPENMLA_REQUIRE_GPU();
  for (DType in : {DType::bf16, DType::fp16, DType::fp32}) {
    for (DType out : {DType::bf16, DType::fp16, DType::fp32}) {
      for (int64_t d_v : {512, 64, 33}) {  // 4 columns a lane, or 1 for d_v = 33
        SCOPED_TRACE(std::string(dtype_name(in)) + " -> " + dtype_name(out) + ", d_v " + std::to_string(d_v));
        const Results parts = special_parts(in, d_v, static_cast<uint64_t>(d_v));
        const Results gpu = merge_on_gpu(parts, out);
        EXPECT_TRUE(agree(gpu, merge_on_host(parts, out)));
        EXPECT_EQ(gpu.lse[gpu.lse_index(0, 1, 2, 0)], INFINITY);
        EXPECT_EQ(gpu.out_at(gpu.out_index(0, 1, 0, 2, 0)), 0.0);
        EXPECT_TRUE(std::isnan(gpu.lse[gpu.lse_index(0, 2, 4, 1)]));
        EXPECT_TRUE(std::isnan(gpu.out_at(gpu.out_index(0, 2, 0, 3, d_v - 1))));
      }
    }
  }
}

TEST(GpuMerge, EqualsAttentionOverTheUnion) {
  OPENMLA_REQUIRE_GPU();
  const Problem problem = make_problem(
      {.b = 5, .s_q = 2, .h_q = 16, .s_k = 300, .varlen = true, .causal = true, .seed = 61, .zero_length_every = 4});
  const Reference whole = reference_decode(problem);
  for (int64_t n = 1; n <= 8; ++n) {
    for (DType dtype : {DType::bf16, DType::fp16, DType::fp32}) {
      SCOPED_TRACE(std::to_string(n) + " parts of " + dtype_name(dtype));
      const Results parts = reference_parts(
          problem, n, [n](int64_t seq, int64_t key) { return (key / 5 + seq) % n; }, dtype);
      const Results merged = merge_on_gpu(parts, DType::bf16);
      EXPECT_TRUE(matches(whole, merged.out_view(), merged.lse_view()));
    }
  }
}

// More rows than the grid has warps (65536 blocks of 8): the grid-stride loop covers the rest.
TEST(GpuMerge, RowsBeyondTheGrid) {
  OPENMLA_REQUIRE_GPU();
  const Results parts = random_parts(DType::bf16, 2, 64, 4, 2100, 8, 62);
  EXPECT_TRUE(agree(merge_on_gpu(parts, DType::bf16), merge_on_host(parts, DType::bf16)));
}

// Padded, offset views take the 1-column path; the result has the bits of the 4-column path.
TEST(GpuMerge, StridedViewsGiveTheContiguousBits) {
  OPENMLA_REQUIRE_GPU();
  const int64_t n = 3, b = 2, s_q = 2, h_q = 8, d_v = 64;
  const Results parts = random_parts(DType::bf16, n, b, s_q, h_q, d_v, 63);
  const Results want = merge_on_gpu(parts, DType::fp32);

  // The parts inside [n, b, s_q, h_q, d_v + 3] starting one element in; lse_parts as is.
  Results padded = make_results(DType::bf16, n, b, s_q, h_q, d_v + 3);
  for (int64_t k = 0; k < n; ++k) {
    for (int64_t row = 0; row < b * s_q * h_q; ++row) {
      for (int64_t d = 0; d < d_v; ++d) {
        padded.set_out((k * b * s_q * h_q + row) * (d_v + 3) + 1 + d,
                       parts.out_at((k * b * s_q * h_q + row) * d_v + d));
      }
    }
  }
  padded.lse = parts.lse;
  const DeviceResults in(padded);
  Results got = make_results(DType::fp32, 1, b, s_q, h_q, d_v);
  const DeviceResults out(got);
  TensorView op = on_device(padded.stacked_out(), in.out);
  op.sizes[4] = d_v;
  op.data = static_cast<uint16_t*>(op.data) + 1;
  merge(MergeArgs{.out_parts = op,
                  .lse_parts = on_device(parts.stacked_lse(), in.lse),
                  .out = on_device(got.out_view(), out.out),
                  .lse = on_device(got.lse_view(), out.lse)});
  SUPPORT_CUDA(cudaDeviceSynchronize());
  out.download(got);
  EXPECT_EQ(got.out, want.out);
  EXPECT_EQ(std::memcmp(got.lse.data(), want.lse.data(), got.lse.size() * 4), 0);
}

TEST(GpuMerge, CapturedInACudaGraph) {
  OPENMLA_REQUIRE_GPU();
  const Results first = special_parts(DType::bf16, 512, 64);
  const Results second = random_parts(DType::bf16, 4, 3, 2, 5, 512, 65);
  Results merged = make_results(DType::bf16, 1, 3, 2, 5, 512);
  DeviceResults in(first);
  const DeviceResults out(merged);
  cudaStream_t stream = nullptr;
  SUPPORT_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaGraph_t graph = nullptr;
  SUPPORT_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  merge(MergeArgs{.out_parts = on_device(first.stacked_out(), in.out),
                  .lse_parts = on_device(first.stacked_lse(), in.lse),
                  .out = on_device(merged.out_view(), out.out),
                  .lse = on_device(merged.lse_view(), out.lse),
                  .stream = stream});
  SUPPORT_CUDA(cudaStreamEndCapture(stream, &graph));
  cudaGraphExec_t exec = nullptr;
  SUPPORT_CUDA(cudaGraphInstantiate(&exec, graph, 0));
  for (const Results* parts : {&first, &second}) {
    in.out.upload(parts->out.data(), in.out.bytes());
    in.lse.upload(parts->lse.data(), in.lse.bytes());
    SUPPORT_CUDA(cudaDeviceSynchronize());  // the copies land before the replay reads them
    SUPPORT_CUDA(cudaGraphLaunch(exec, stream));
    SUPPORT_CUDA(cudaStreamSynchronize(stream));
    out.download(merged);
    EXPECT_TRUE(agree(merged, merge_on_host(*parts, DType::bf16)));
  }
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

// The context-parallel recipe on one GPU: share 0 decoded non-causal, share 1 (the last s_q keys)
// causal, merged; against the float64 reference (computed on the GPU) and against one GPU decode over the whole.
TEST(GpuMerge, DecodeHalvesMergeToWhole) {
  OPENMLA_REQUIRE_GPU();
  for (int64_t s_q : {1, 2, 4}) {
    SCOPED_TRACE("s_q " + std::to_string(s_q));
    ProblemSpec spec{.b = 6,
                     .s_q = s_q,
                     .h_q = 128,
                     .s_k = 3000,
                     .varlen = true,
                     .causal = true,
                     .seed = 66,
                     .zero_length_every = 5};
    const Problem problem = make_problem(spec);
    spec.causal = false;
    const Problem visible_to_all = make_problem(spec);  // the same data: causal does not enter the draws
    ASSERT_EQ(visible_to_all.q, problem.q);
    ASSERT_EQ(visible_to_all.block_table, problem.block_table);
    const std::vector<PageShare> shares = split_pages_in_two(problem);
    Results stack = make_results(DType::bf16, 2, spec.b, s_q, spec.h_q, spec.d_v);
    for (int part = 0; part < 2; ++part) {
      DeviceProblem device = upload(problem);
      device.block_table.upload(shares[part].block_table.data(), shares[part].block_table.size() * 4);
      device.seqlens.upload(shares[part].seqlens.data(), shares[part].seqlens.size() * 4);
      const GpuRun run = gpu_decode(part == 0 ? visible_to_all : problem, device);
      ASSERT_EQ(run.status.code, StatusCode::ok);
      std::memcpy(reinterpret_cast<uint16_t*>(stack.out.data()) + part * run.output.out.size(), run.output.out.data(),
                  run.output.out.size() * 2);
      std::memcpy(stack.lse.data() + part * run.output.lse.size(), run.output.lse.data(), run.output.lse.size() * 4);
    }
    const Results merged = merge_on_gpu(stack, DType::bf16);
    const DeviceProblem device = upload(problem);
    EXPECT_TRUE(matches(gpu_reference(problem, device), merged.out_view(), merged.lse_view()));
    const GpuRun whole = gpu_decode(problem, device);
    EXPECT_TRUE(matches(reference_from_output(whole.output.out_view(), whole.output.lse_view()), merged.out_view(),
                        merged.lse_view()));
  }
}

TEST(GpuMerge, DeviceChecksRejectAndWriteNothing) {
  OPENMLA_REQUIRE_GPU();
  const Results parts = random_parts(DType::bf16, 2, 1, 1, 4, 16, 67);
  Results merged = make_results(DType::bf16, 1, 1, 1, 4, 16);
  const DeviceResults in(parts);
  const DeviceResults out(merged);
  MergeArgs args{.out_parts = on_device(parts.stacked_out(), in.out),
                 .lse_parts = on_device(parts.stacked_lse(), in.lse),
                 .out = on_device(merged.out_view(), out.out),
                 .lse = on_device(merged.lse_view(), out.lse)};
  MergeArgs host_out = args;
  host_out.out.data = merged.out.data();
  EXPECT_THROW(
      {
        try {
          merge(host_out);
        } catch (const Error& e) {
          EXPECT_STREQ(e.what(), "openmla: out: expected memory of cuda:0, given host memory");
          throw;
        }
      },
      Error);
  MergeArgs bad_index = args;
  for (TensorView* v : {&bad_index.out_parts, &bad_index.lse_parts, &bad_index.out, &bad_index.lse}) {
    v->device.index = 999;
  }
  EXPECT_THROW(merge(bad_index), Error);
  const Results before = merged;
  out.download(merged);
  EXPECT_EQ(merged.out, before.out);
  EXPECT_EQ(merged.lse, before.lse);
}

}  // namespace
}  // namespace openmla::test
