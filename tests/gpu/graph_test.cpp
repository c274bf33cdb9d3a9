// A whole decoding step (plan + decode of two layers) captured in a CUDA graph and replayed with new
// cache contents and new lengths of the same batch: decode allocates nothing and never syncs the host.

#include <gtest/gtest.h>

#include <vector>

#include "check.h"
#include "cuda_handles.h"
#include "device.h"
#include "reference_gpu.h"

namespace openmla::test {
namespace {

int64_t pages_of(const std::vector<int32_t>& lengths, int64_t page) {
  int64_t pages = 0;
  for (int32_t len : lengths) {
    pages += (len + page - 1) / page;
  }
  return pages;
}

TEST(GpuGraph, CapturedStepReplaysWithNewLengths) {
  OPENMLA_REQUIRE_GPU();
  const std::vector<int32_t> first = {100, 3000, 0, 700, 64};
  const std::vector<int32_t> second = {2900, 5, 1200, 64, 1};
  // Same buffer sizes for both problems: equal page counts and block-table widths.
  ProblemSpec a{.b = 5, .s_q = 2, .h_q = 32, .causal = true, .seed = 100, .lengths = first};
  ProblemSpec b = a;
  b.seed = 101;
  b.lengths = second;
  a.extra_pages = std::max<int64_t>(0, pages_of(second, 64) - pages_of(first, 64));
  b.extra_pages = std::max<int64_t>(0, pages_of(first, 64) - pages_of(second, 64));
  a.extra_table_columns = 2;
  b.extra_table_columns = 2 + (3000 - 2900) / 64;
  const Problem pa = make_problem(a);
  const Problem pb = make_problem(b);
  ASSERT_EQ(pa.num_blocks, pb.num_blocks);
  ASSERT_EQ(pa.max_blocks_per_seq, pb.max_blocks_per_seq);

  DeviceProblem device = upload(pa);
  const Device gpu{DeviceType::cuda, 0};
  const PlanConfig config = gpu_plan_config(pa);
  DeviceBuffer plan_memory(static_cast<size_t>(plan_buffer_size(config)));
  const int64_t workspace_bytes = workspace_size(config, 512);
  DeviceBuffer workspace(static_cast<size_t>(workspace_bytes));
  Output layer_out[2] = {make_output(a), make_output(a)};
  DeviceBuffer out[2] = {DeviceBuffer(layer_out[0].out.size() * 2), DeviceBuffer(layer_out[1].out.size() * 2)};
  DeviceBuffer lse[2] = {DeviceBuffer(layer_out[0].lse.size() * 4), DeviceBuffer(layer_out[1].lse.size() * 4)};

  const support::Stream owned_stream = support::make_stream();
  cudaStream_t stream = owned_stream.get();
  SUPPORT_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  const Plan plan = openmla::plan(config, device.seqlens_view(pa),
                                  Buffer{plan_memory.data(), static_cast<int64_t>(plan_memory.bytes()), gpu}, stream);
  for (int layer = 0; layer < 2; ++layer) {
    DecodeArgs args;
    args.q = device.q_view(pa);
    args.k_cache = device.k_cache_view(pa);
    args.block_table = device.block_table_view(pa);
    args.cache_seqlens = device.seqlens_view(pa);
    args.causal = true;
    args.plan = &plan;
    args.workspace = Buffer{workspace.data(), workspace_bytes, gpu};
    args.out = on_gpu(layer_out[layer].out_view(), out[layer].data());
    args.lse = on_gpu(layer_out[layer].lse_view(), lse[layer].data());
    args.stream = stream;
    decode(args);
  }
  const support::GraphExec exec = support::end_capture(stream);

  for (const Problem* problem : {&pa, &pb}) {
    device.q.upload(problem->q.data(), problem->q.size() * 2);
    device.k_cache.upload(problem->k_cache.data(), problem->k_cache.bytes());
    device.block_table.upload(problem->block_table.data(), problem->block_table.size() * 4);
    device.seqlens.upload(problem->seqlens.data(), problem->seqlens.size() * 4);
    SUPPORT_CUDA(cudaGraphLaunch(exec.get(), stream));
    SUPPORT_CUDA(cudaStreamSynchronize(stream));
    const Reference ref = gpu_reference(*problem, device);
    for (int layer = 0; layer < 2; ++layer) {
      out[layer].download(layer_out[layer].out.data(), out[layer].bytes());
      lse[layer].download(layer_out[layer].lse.data(), lse[layer].bytes());
      EXPECT_TRUE(matches(ref, layer_out[layer].out_view(), layer_out[layer].lse_view()))
          << "layer " << layer << ", seed " << problem->spec.seed;
    }
  }
}

TEST(GpuGraph, DecodeCapturesKernelsOnly) {
  // A decode adds only its kernels to a captured step: no memset or other node per layer (the status
  // record is rewritten by the decode kernel itself), on every kernel this machine has.
  OPENMLA_REQUIRE_GPU();
  const Problem problem = make_problem({.b = 3, .h_q = 64, .s_k = 3000, .seed = 103});
  const DeviceProblem device = upload(problem);
  const Device gpu{DeviceType::cuda, 0};
  const support::Stream owned_stream = support::make_stream();  // not ordered with the default stream
  cudaStream_t stream = owned_stream.get();
  const PlanConfig config = gpu_plan_config(problem);
  DeviceBuffer plan_memory(static_cast<size_t>(plan_buffer_size(config)));
  const Plan plan = openmla::plan(config, device.seqlens_view(problem),
                                  Buffer{plan_memory.data(), static_cast<int64_t>(plan_memory.bytes()), gpu}, stream);
  const int64_t workspace_bytes = workspace_size(config, 512);
  DeviceBuffer workspace(static_cast<size_t>(workspace_bytes));
  Output output = make_output(problem.spec);
  DeviceBuffer out(output.out.size() * 2);
  DeviceBuffer lse(output.lse.size() * 4);
  // The uploads (default stream; a pageable one may land after cudaMemcpy returns) and the plan are
  // done before any replay on `stream` reads them.
  SUPPORT_CUDA(cudaDeviceSynchronize());
  for (const Kernel kernel : kernels_here()) {
    SCOPED_TRACE(kernel_name(kernel));
    DecodeArgs args;
    args.q = device.q_view(problem);
    args.k_cache = device.k_cache_view(problem);
    args.block_table = device.block_table_view(problem);
    args.cache_seqlens = device.seqlens_view(problem);
    args.plan = &plan;
    args.workspace = Buffer{workspace.data(), workspace_bytes, gpu};
    args.out = on_gpu(output.out_view(), out.data());
    args.lse = on_gpu(output.lse_view(), lse.data());
    args.kernel = kernel;
    args.stream = stream;
    SUPPORT_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    decode(args);
    cudaGraph_t captured = nullptr;
    SUPPORT_CUDA(cudaStreamEndCapture(stream, &captured));
    const support::Graph graph(captured);
    size_t count = 0;
    SUPPORT_CUDA(cudaGraphGetNodes(graph.get(), nullptr, &count));
    std::vector<cudaGraphNode_t> nodes(count);
    SUPPORT_CUDA(cudaGraphGetNodes(graph.get(), nodes.data(), &count));
    EXPECT_EQ(count, 2u) << "the decode kernel and the combine";
    for (cudaGraphNode_t node : nodes) {
      cudaGraphNodeType type;
      SUPPORT_CUDA(cudaGraphNodeGetType(node, &type));
      EXPECT_EQ(type, cudaGraphNodeTypeKernel);
    }
    cudaGraphExec_t instantiated = nullptr;
    SUPPORT_CUDA(cudaGraphInstantiate(&instantiated, graph.get(), 0));
    const support::GraphExec exec(instantiated);
    SUPPORT_CUDA(cudaGraphLaunch(exec.get(), stream));
    EXPECT_EQ(read_status(args.workspace, stream).code, StatusCode::ok);
    out.download(output.out.data(), out.bytes());
    lse.download(output.lse.data(), lse.bytes());
    EXPECT_TRUE(matches(gpu_reference(problem, device), output.out_view(), output.lse_view()));
  }
}

TEST(GpuGraph, EmptyBatchUnderCapture) {
  // An engine's padded step with no sequence: plan and decode of b = 0 capture into a graph (no kernel
  // is needed) with null pointers in the views of zero size, and replay.
  OPENMLA_REQUIRE_GPU();
  const Device gpu{DeviceType::cuda, 0};
  const PlanConfig config{.batch = 0, .h_q = 16, .device = gpu};
  DeviceBuffer plan_memory(static_cast<size_t>(plan_buffer_size(config)));
  const int64_t workspace_bytes = workspace_size(resolve_plan_config(config), 512);
  EXPECT_EQ(workspace_bytes, 256);
  DeviceBuffer workspace(static_cast<size_t>(workspace_bytes));
  const Problem cache = make_problem({.h_q = 16, .seed = 102});
  DeviceProblem device = upload(cache);

  cudaStream_t stream;
  SUPPORT_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  cudaGraph_t graph;
  SUPPORT_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  const Plan plan = openmla::plan(config, make_view(nullptr, DType::int32, {0}, gpu),
                                  Buffer{plan_memory.data(), static_cast<int64_t>(plan_memory.bytes()), gpu}, stream);
  DecodeArgs args;
  args.q = make_view(nullptr, DType::bf16, {0, 1, 16, 576}, gpu);
  args.k_cache = device.k_cache_view(cache);
  args.block_table = make_view(nullptr, DType::int32, {0, 4}, gpu);
  args.cache_seqlens = make_view(nullptr, DType::int32, {0}, gpu);
  args.plan = &plan;
  args.workspace = Buffer{workspace.data(), workspace_bytes, gpu};
  args.out = make_view(nullptr, DType::bf16, {0, 1, 16, 512}, gpu);
  args.lse = make_view(nullptr, DType::fp32, {0, 16, 1}, gpu);
  args.stream = stream;
  decode(args);
  SUPPORT_CUDA(cudaStreamEndCapture(stream, &graph));
  cudaGraphExec_t exec;
  SUPPORT_CUDA(cudaGraphInstantiate(&exec, graph, 0));
  const int32_t dirty = 5;  // an offence left by an earlier step: the replay resets it
  workspace.upload(&dirty, 4);
  SUPPORT_CUDA(cudaDeviceSynchronize());  // a pageable upload may land after cudaMemcpy returns
  SUPPORT_CUDA(cudaGraphLaunch(exec, stream));
  EXPECT_EQ(read_status(args.workspace, stream).code, StatusCode::ok);
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

}  // namespace
}  // namespace openmla::test
