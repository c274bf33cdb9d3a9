#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <exception>

#include "cases.h"
#include "check.h"
#include "cuda_error.h"
#include "cuda_memory.h"
#include "data.h"
#include "openmla/decode.h"

namespace openmla::bench {

namespace {

// Both sides round out to 16 bits once, so the element bound is twice the tests' bound against a
// float64 reference (docs/design.md, Tolerances); the lse bound likewise.
constexpr double kOutAbs = 2e-3;
constexpr double kOutRel = 1.0 / 32;
constexpr double kMaxRelFrobenius = 5e-3;
constexpr double kLseAbs = 2e-5;
constexpr double kLseRel = 4e-4;
constexpr int kThreads = 256;

std::vector<Case> check_cases() {
  Case causal_mtp;
  causal_mtp.b = 5;
  causal_mtp.s_q = 2;
  causal_mtp.h_q = 16;
  causal_mtp.s_k = 300;
  causal_mtp.causal = true;
  Case wide_fp16;
  wide_fp16.b = 3;
  wide_fp16.h_q = 128;
  wide_fp16.s_k = 1000;
  wide_fp16.varlen = false;
  wide_fp16.page_size = 32;
  wide_fp16.dtype = DType::fp16;
  Case causal_per_tensor = causal_mtp;
  causal_per_tensor.format = CacheFormat::fp8_per_tensor;
  Case wide_656 = wide_fp16;
  wide_656.dtype = DType::bf16;
  wide_656.format = CacheFormat::fp8_656;
  return {causal_mtp, wide_fp16, causal_per_tensor, wide_656};
}

float to_float(const void* data, int64_t i, DType dtype) {
  if (dtype == DType::bf16) {
    return __bfloat162float(static_cast<const __nv_bfloat16*>(data)[i]);
  }
  return __half2float(static_cast<const __half*>(data)[i]);
}

support::PinnedBuffer download(const TensorView& view) {
  const int64_t bytes = view.numel() * dtype_size(view.dtype);
  support::PinnedBuffer host(bytes);
  SUPPORT_CUDA(cudaMemcpy(host.data(), view.data, static_cast<size_t>(bytes), cudaMemcpyDeviceToHost));
  return host;
}

TensorView on_host(const TensorView& view, const support::PinnedBuffer& host) {
  TensorView v = view;
  v.data = host.data();
  v.device = Device{};
  return v;
}

SpotCheck check_one(const Case& c, cudaStream_t stream) {
  const Problem p = make_problem(c, 1, stream);
  const PlanConfig gpu_config = plan_config(c, p.device);
  const DecodeBuffers buffers = allocate_decode_buffers(gpu_config, c.d_v);
  const Plan gpu_plan = plan(gpu_config, p.cache_seqlens_view(), buffers.plan, stream);
  const DecodeArgs gpu = p.args(0, gpu_plan, buffers.workspace, stream);
  decode(gpu);
  check_status(read_status(buffers.workspace, stream));
  SUPPORT_CUDA(cudaStreamSynchronize(stream));

  const support::PinnedBuffer q = download(gpu.q);
  const support::PinnedBuffer k_cache = download(gpu.k_cache);
  const support::PinnedBuffer block_table = download(gpu.block_table);
  const support::PinnedBuffer seqlens = download(gpu.cache_seqlens);
  const support::PinnedBuffer gpu_out = download(gpu.out);
  const support::PinnedBuffer gpu_lse = download(gpu.lse);
  const PlanConfig cpu_config = plan_config(c, Device{});
  const support::PinnedBuffer cpu_plan_buffer(plan_buffer_size(cpu_config));
  const support::PinnedBuffer cpu_workspace(workspace_size(cpu_config, c.d_v));
  const support::PinnedBuffer cpu_out(gpu_out.bytes());
  const support::PinnedBuffer cpu_lse(gpu_lse.bytes());
  DecodeArgs cpu = gpu;
  cpu.q = on_host(gpu.q, q);
  cpu.k_cache = on_host(gpu.k_cache, k_cache);
  support::PinnedBuffer k_scale;
  if (c.format == CacheFormat::fp8_per_tensor) {
    k_scale = download(gpu.k_scale);
    cpu.k_scale = on_host(gpu.k_scale, k_scale);
  }
  cpu.block_table = on_host(gpu.block_table, block_table);
  cpu.cache_seqlens = on_host(gpu.cache_seqlens, seqlens);
  cpu.out = on_host(gpu.out, cpu_out);
  cpu.lse = on_host(gpu.lse, cpu_lse);
  const Plan cpu_plan =
      plan(cpu_config, cpu.cache_seqlens, Buffer{cpu_plan_buffer.data(), cpu_plan_buffer.bytes(), Device{}});
  cpu.plan = &cpu_plan;
  cpu.workspace = Buffer{cpu_workspace.data(), cpu_workspace.bytes(), Device{}};
  cpu.stream = nullptr;
  decode(cpu);

  SpotCheck r;
  r.name = case_name(c);
  double diff2 = 0.0;
  double ref2 = 0.0;
  for (int64_t i = 0; i < gpu.out.numel(); ++i) {
    const double x = to_float(gpu_out.data(), i, c.dtype);
    const double ref = to_float(cpu_out.data(), i, c.dtype);
    const double excess = std::abs(x - ref) / (kOutAbs + std::abs(ref) * kOutRel);
    r.max_excess = std::max(r.max_excess, std::isnan(excess) ? INFINITY : excess);
    r.mismatches += !(excess <= 1.0);
    diff2 += (x - ref) * (x - ref);
    ref2 += ref * ref;
  }
  for (int64_t i = 0; i < gpu.lse.numel(); ++i) {
    const double x = gpu_lse.as<float>()[i];
    const double ref = cpu_lse.as<float>()[i];
    const bool both_inf = std::isinf(x) && x == ref;
    const double excess = both_inf ? 0.0 : std::abs(x - ref) / (kLseAbs + std::abs(ref) * kLseRel);
    r.max_lse_excess = std::max(r.max_lse_excess, std::isnan(excess) ? INFINITY : excess);
    r.mismatches += !(excess <= 1.0);
  }
  r.rel_frobenius = ref2 > 0.0 ? std::sqrt(diff2 / ref2) : std::sqrt(diff2);
  r.passed = r.mismatches == 0 && r.rel_frobenius <= kMaxRelFrobenius;
  return r;
}

template <typename T>
__global__ void count_nonfinite_kernel(const T* x,  // [n]
                                       int64_t n, unsigned long long* count) {
  unsigned long long local = 0;
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += stride) {
    local += !isfinite(static_cast<float>(x[i]));
  }
  if (local != 0) {
    atomicAdd(count, local);
  }
}

}  // namespace

std::vector<SpotCheck> run_spot_checks(cudaStream_t stream) {
  std::vector<SpotCheck> results;
  for (const Case& c : check_cases()) {
    try {
      results.push_back(check_one(c, stream));
    } catch (const std::exception& e) {
      results.push_back(SpotCheck{.name = case_name(c), .error = e.what()});
    }
  }
  return results;
}

int64_t count_nonfinite(const TensorView& out, cudaStream_t stream) {
  support::DeviceBuffer count(sizeof(unsigned long long));
  SUPPORT_CUDA(cudaMemsetAsync(count.data(), 0, sizeof(unsigned long long), stream));
  const int64_t n = out.numel();
  const int blocks = static_cast<int>(std::clamp<int64_t>((n + kThreads - 1) / kThreads, 1, 4096));
  if (out.dtype == DType::bf16) {
    count_nonfinite_kernel<<<blocks, kThreads, 0, stream>>>(static_cast<const __nv_bfloat16*>(out.data), n,
                                                            count.as<unsigned long long>());
  } else {
    count_nonfinite_kernel<<<blocks, kThreads, 0, stream>>>(static_cast<const __half*>(out.data), n,
                                                            count.as<unsigned long long>());
  }
  SUPPORT_CUDA_LAUNCHED();
  unsigned long long host = 0;
  SUPPORT_CUDA(cudaMemcpyAsync(&host, count.data(), sizeof(host), cudaMemcpyDeviceToHost, stream));
  SUPPORT_CUDA(cudaStreamSynchronize(stream));
  return static_cast<int64_t>(host);
}

}  // namespace openmla::bench
