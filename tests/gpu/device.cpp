#include "device.h"

#include <string>
#include <utility>

#include "openmla/error.h"
#include "openmla/plan.h"

namespace openmla::test {

bool has_gpu() {
  int count = 0;
  return cudaGetDeviceCount(&count) == cudaSuccess && count > 0;
}

void cuda_ok(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    throw Error(std::string("test CUDA call failed: ") + what + ": " + cudaGetErrorString(status));
  }
}

DeviceBuffer::DeviceBuffer(size_t bytes) : bytes_(bytes) {
  cuda_ok(cudaMalloc(&data_, bytes == 0 ? 1 : bytes), "cudaMalloc");
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)), bytes_(std::exchange(other.bytes_, 0)) {}

DeviceBuffer& DeviceBuffer::operator=(DeviceBuffer&& other) noexcept {
  std::swap(data_, other.data_);
  std::swap(bytes_, other.bytes_);
  return *this;
}

DeviceBuffer::~DeviceBuffer() {
  if (data_ != nullptr) {
    cudaFree(data_);
  }
}

void DeviceBuffer::upload(const void* host, size_t bytes, size_t offset) {
  cuda_ok(cudaMemcpy(static_cast<char*>(data_) + offset, host, bytes, cudaMemcpyHostToDevice), "upload");
}

void DeviceBuffer::download(void* host, size_t bytes, size_t offset) const {
  cuda_ok(cudaMemcpy(host, static_cast<const char*>(data_) + offset, bytes, cudaMemcpyDeviceToHost), "download");
}

namespace {

TensorView on_gpu(TensorView view, void* data) {
  view.data = data;
  view.device = Device{DeviceType::cuda, 0};
  return view;
}

}  // namespace

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

GpuRun gpu_decode(const Problem& p, const DeviceProblem& d, int64_t num_parts) {
  const PlanConfig config = gpu_plan_config(p, num_parts);
  DeviceBuffer plan_memory(static_cast<size_t>(plan_buffer_size(config)));
  const Device gpu{DeviceType::cuda, 0};
  const Plan plan = openmla::plan(config, d.seqlens_view(p),
                                  Buffer{plan_memory.data(), static_cast<int64_t>(plan_memory.bytes()), gpu});
  return gpu_decode_with(p, d, plan);
}

GpuRun gpu_decode_with(const Problem& p, const DeviceProblem& d, const Plan& plan) {
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
  decode(args);
  run.status = read_status(args.workspace);
  cuda_ok(cudaGetLastError(), "decode");
  out.download(o.out.data(), out.bytes());
  lse.download(o.lse.data(), lse.bytes());
  return run;
}

}  // namespace openmla::test
