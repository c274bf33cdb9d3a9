// The demo's GPU path: inputs copied to cuda:0, plan and decode on a stream, CUDA-event timing.

#include <cuda_runtime.h>

#include <algorithm>
#include <string>
#include <vector>

#include "openmla/openmla.h"
#include "run.h"

namespace openmla::demo {

namespace {

constexpr int kRepeats = 20;

void ok(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw Error(std::string("openmla-demo: ") + what + ": " + cudaGetErrorString(status));
  }
}

// Device memory holding a copy of `bytes` host bytes (or none when host is null), freed on scope exit.
class DeviceCopy {
 public:
  DeviceCopy(const void* host, size_t bytes) {
    ok(cudaMalloc(&data_, bytes), "cudaMalloc");
    if (host != nullptr) {
      ok(cudaMemcpy(data_, host, bytes, cudaMemcpyHostToDevice), "cudaMemcpy to device");
    }
  }
  DeviceCopy(const DeviceCopy&) = delete;
  DeviceCopy& operator=(const DeviceCopy&) = delete;
  ~DeviceCopy() { cudaFree(data_); }
  void* data() const { return data_; }

 private:
  void* data_ = nullptr;
};

TensorView on(TensorView view, void* data) {
  view.data = data;
  view.device = Device{DeviceType::cuda, 0};
  return view;
}

}  // namespace

int cuda_device_count() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess ? count : 0;
}

Run run_on_cuda(const test::Problem& p) {
  const Device gpu{DeviceType::cuda, 0};
  const DeviceCopy q(p.q.data(), p.q.size() * 2);                          // [b, s_q, h_q, d_qk]
  const DeviceCopy k_cache(p.k_cache.data(), p.k_cache.bytes());           // [num_blocks, page, h_kv, d_qk]
  const DeviceCopy block_table(p.block_table.data(), p.block_table.size() * 4);  // [b, max_blocks]
  const DeviceCopy seqlens(p.seqlens.data(), p.seqlens.size() * 4);       // [b]
  Run run{.output = test::make_output(p.spec)};
  const DeviceCopy out(nullptr, run.output.out.size() * 2);                // [b, s_q, h_q, d_v]
  const DeviceCopy lse(nullptr, run.output.lse.size() * 4);                // [b, h_q, s_q]

  cudaStream_t stream;
  ok(cudaStreamCreate(&stream), "cudaStreamCreate");
  const PlanConfig config{.batch = p.spec.b, .s_q = p.spec.s_q, .h_q = p.spec.h_q, .h_kv = p.spec.h_kv,
                          .page_size = p.spec.page_size, .device = gpu};
  const int64_t plan_bytes = plan_buffer_size(config);
  const DeviceCopy plan_memory(nullptr, static_cast<size_t>(plan_bytes));
  const Plan plan = openmla::plan(config, on(p.seqlens_view(), seqlens.data()), {plan_memory.data(), plan_bytes, gpu},
                                  stream);
  const int64_t workspace_bytes = workspace_size(plan.config, p.spec.d_v);
  const DeviceCopy workspace(nullptr, static_cast<size_t>(workspace_bytes));

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

  cudaEvent_t start;
  cudaEvent_t stop;
  ok(cudaEventCreate(&start), "cudaEventCreate");
  ok(cudaEventCreate(&stop), "cudaEventCreate");
  decode(args);  // warm-up
  std::vector<double> times;
  for (int r = 0; r < kRepeats; ++r) {
    ok(cudaEventRecord(start, stream), "cudaEventRecord");
    decode(args);
    ok(cudaEventRecord(stop, stream), "cudaEventRecord");
    ok(cudaEventSynchronize(stop), "cudaEventSynchronize");
    float ms = 0.f;
    ok(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
    times.push_back(ms * 1e-3);
  }
  check_status(read_status(args.workspace, stream));
  std::sort(times.begin(), times.end());
  run.seconds = times[times.size() / 2];
  ok(cudaMemcpy(run.output.out.data(), out.data(), run.output.out.size() * 2, cudaMemcpyDeviceToHost), "copy out");
  ok(cudaMemcpy(run.output.lse.data(), lse.data(), run.output.lse.size() * 4, cudaMemcpyDeviceToHost), "copy lse");
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaStreamDestroy(stream);
  return run;
}

}  // namespace openmla::demo
