#include "device.h"

#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>

#include "openmla/error.h"
#include "openmla/plan.h"

namespace openmla::test {

bool has_gpu() { return support::cuda_device_count() > 0; }

TensorView on_gpu(TensorView view, void* data) {
  view.data = data;
  view.device = Device{DeviceType::cuda, 0};
  return view;
}

TensorView DeviceProblem::q_view(const Problem& p) const { return on_gpu(p.q_view(), q.data()); }
TensorView DeviceProblem::k_cache_view(const Problem& p) const { return on_gpu(p.k_cache_view(), k_cache.data()); }
TensorView DeviceProblem::block_table_view(const Problem& p) const {
  return on_gpu(p.block_table_view(), block_table.data());
}
TensorView DeviceProblem::seqlens_view(const Problem& p) const { return on_gpu(p.seqlens_view(), seqlens.data()); }

DeviceProblem upload(const Problem& p) {
  DeviceProblem d;
  const size_t q_bytes = p.q.size() * 2;
  d.q = DeviceBuffer(q_bytes);
  d.q.upload(p.q.data(), q_bytes);
  d.k_cache = DeviceBuffer(p.k_cache.bytes());
  d.k_cache.upload(p.k_cache.data(), p.k_cache.bytes());
  d.block_table = DeviceBuffer(p.block_table.size() * 4);
  d.block_table.upload(p.block_table.data(), p.block_table.size() * 4);
  d.seqlens = DeviceBuffer(p.seqlens.size() * 4);
  d.seqlens.upload(p.seqlens.data(), p.seqlens.size() * 4);
  return d;
}

PlanConfig gpu_plan_config(const Problem& p, int64_t num_parts) {
  return PlanConfig{.batch = p.spec.b,
                    .s_q = p.spec.s_q,
                    .h_q = p.spec.h_q,
                    .h_kv = p.spec.h_kv,
                    .page_size = p.spec.page_size,
                    .device = Device{DeviceType::cuda, 0},
                    .num_parts = num_parts};
}

bool hopper_kernel_available() {
#if defined(OPENMLA_TEST_SM90A)
  int major = 0;
  int minor = 0;
  return has_gpu() && cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, 0) == cudaSuccess &&
         cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, 0) == cudaSuccess && major == 9 &&
         minor == 0;
#else
  return false;
#endif
}

Kernel expected_automatic_kernel(const Problem& problem) {
  const char* force = std::getenv("OPENMLA_FORCE_PORTABLE");
  const bool forced = force != nullptr && std::string_view(force) == "1";
  const ProblemSpec& spec = problem.spec;
  return !forced && hopper_kernel_available() && spec.page_size % 64 == 0 && spec.d_qk == 576 && spec.d_v == 512 &&
                 problem.num_blocks > 0
             ? Kernel::sm90
             : Kernel::portable;
}

GpuRun gpu_decode(const Problem& p, const DeviceProblem& d, int64_t num_parts, Kernel kernel,
                  const AdjustArgs& adjust) {
  const PlanConfig config = gpu_plan_config(p, num_parts);
  DeviceBuffer plan_memory(static_cast<size_t>(plan_buffer_size(config)));
  const Device gpu{DeviceType::cuda, 0};
  const Plan plan = openmla::plan(config, d.seqlens_view(p),
                                  Buffer{plan_memory.data(), static_cast<int64_t>(plan_memory.bytes()), gpu});
  return gpu_decode_with(p, d, plan, kernel, adjust);
}

std::vector<Kernel> kernels_here() {
  if (hopper_kernel_available()) {
    return {Kernel::portable, Kernel::sm90};
  }
  return {Kernel::portable};
}

GpuRun gpu_decode_with(const Problem& p, const DeviceProblem& d, const Plan& plan, Kernel kernel,
                       const AdjustArgs& adjust) {
  const Device gpu{DeviceType::cuda, 0};
  const PlanConfig shapes = gpu_plan_config(p, plan.config.num_parts);
  const int64_t workspace_bytes = workspace_size(shapes, p.spec.d_v);
  DeviceBuffer workspace(static_cast<size_t>(workspace_bytes));

  GpuRun run{make_output(p.spec), {}};
  Output& o = run.output;
  DeviceBuffer out(o.out.size() * 2);
  DeviceBuffer lse(o.lse.size() * 4);
  out.upload(o.out.data(), out.bytes());
  lse.upload(o.lse.data(), lse.bytes());

  DecodeArgs args;
  args.q = d.q_view(p);
  args.k_cache = d.k_cache_view(p);
  args.block_table = d.block_table_view(p);
  args.cache_seqlens = d.seqlens_view(p);
  args.d_v = p.spec.d_v;
  args.softmax_scale = p.spec.softmax_scale;
  args.causal = p.spec.causal;
  args.plan = &plan;
  args.workspace = Buffer{workspace.data(), workspace_bytes, gpu};
  args.out = on_gpu(o.out_view(), out.data());
  args.lse = on_gpu(o.lse_view(), lse.data());
  args.kernel = kernel;
  if (adjust) {
    adjust(args);
  }
  run.kernel = selected_kernel(args);
  decode(args);
  run.status = read_status(args.workspace);
  SUPPORT_CUDA(cudaGetLastError());
  out.download(o.out.data(), out.bytes());
  lse.download(o.lse.data(), lse.bytes());
  return run;
}

}  // namespace openmla::test
