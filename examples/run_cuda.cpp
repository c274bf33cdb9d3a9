// The demo's GPU path: inputs copied to cuda:0, plan and decode on a stream, CUDA-event timing.

#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include "cuda_error.h"
#include "cuda_handles.h"
#include "cuda_memory.h"
#include "openmla/openmla.h"
#include "run.h"

namespace openmla::demo {

namespace {

constexpr int kRepeats = 20;

using support::DeviceBuffer;

// Device memory holding a copy of `bytes` host bytes.
DeviceBuffer device_copy(const void* host, size_t bytes) {
  DeviceBuffer buffer(static_cast<int64_t>(bytes));
  buffer.upload(host, buffer.bytes());
  return buffer;
}

TensorView on(TensorView view, void* data) {
  view.data = data;
  view.device = Device{DeviceType::cuda, 0};
  return view;
}

}  // namespace

int cuda_device_count() { return support::cuda_device_count(); }

Run run_on_cuda(const test::Problem& p) {
  const Device gpu{DeviceType::cuda, 0};
  const DeviceBuffer q = device_copy(p.q.data(), p.q.size() * 2);                          // [b, s_q, h_q, d_qk]
  const DeviceBuffer k_cache = device_copy(p.k_cache.data(), p.k_cache.bytes());  // [num_blocks, page, h_kv, d_qk]
  const DeviceBuffer block_table = device_copy(p.block_table.data(), p.block_table.size() * 4);  // [b, max_blocks]
  const DeviceBuffer seqlens = device_copy(p.seqlens.data(), p.seqlens.size() * 4);       // [b]
  Run run{.output = test::make_output(p.spec)};
  DeviceBuffer out(static_cast<int64_t>(run.output.out.size() * 2));                // [b, s_q, h_q, d_v]
  DeviceBuffer lse(static_cast<int64_t>(run.output.lse.size() * 4));                // [b, h_q, s_q]

  const support::Stream owned_stream = support::make_stream();
  cudaStream_t stream = owned_stream.get();
  const PlanConfig config{.batch = p.spec.b, .s_q = p.spec.s_q, .h_q = p.spec.h_q, .h_kv = p.spec.h_kv,
                          .page_size = p.spec.page_size, .device = gpu};
  const int64_t plan_bytes = plan_buffer_size(config);
  const DeviceBuffer plan_memory(plan_bytes);
  const Plan plan = openmla::plan(config, on(p.seqlens_view(), seqlens.data()), {plan_memory.data(), plan_bytes, gpu},
                                  stream);
  const int64_t workspace_bytes = workspace_size(plan.config, p.spec.d_v);
  const DeviceBuffer workspace(workspace_bytes);

  DecodeArgs args;
  args.q = on(p.q_view(), q.data());
  args.k_cache = on(p.k_cache_view(), k_cache.data());
  args.block_table = on(p.block_table_view(), block_table.data());
  args.cache_seqlens = on(p.seqlens_view(), seqlens.data());
  args.d_v = p.spec.d_v;
  args.plan = &plan;
  args.workspace = {workspace.data(), workspace_bytes, gpu};
  args.out = on(run.output.out_view(), out.data());
  args.lse = on(run.output.lse_view(), lse.data());
  args.stream = stream;

  const support::Event start = support::make_event();
  const support::Event stop = support::make_event();
  decode(args);  // warm-up
  std::vector<double> times;
  for (int r = 0; r < kRepeats; ++r) {
    SUPPORT_CUDA(cudaEventRecord(start.get(), stream));
    decode(args);
    SUPPORT_CUDA(cudaEventRecord(stop.get(), stream));
    SUPPORT_CUDA(cudaEventSynchronize(stop.get()));
    float ms = 0.f;
    SUPPORT_CUDA(cudaEventElapsedTime(&ms, start.get(), stop.get()));
    times.push_back(ms * 1e-3);
  }
  check_status(read_status(args.workspace, stream));
  std::sort(times.begin(), times.end());
  run.seconds = times[times.size() / 2];
  out.download(run.output.out.data(), out.bytes());
  lse.download(run.output.lse.data(), lse.bytes());
  return run;
}

}  // namespace openmla::demo
