#include "roofline.h"

#include <cublas_v2.h>

#include "cuda_check.h"
#include "data.h"
#include "handles.h"
#include "memory.h"
#include "timing.h"

namespace openmla::bench {

namespace {

constexpr int64_t kCopyBytes = int64_t{1} << 30;  // far beyond any L2
constexpr int64_t kGemmN = 8192;
constexpr int kCopiesPerRun = 4;
constexpr int kGemmsPerRun = 4;
constexpr uint64_t kCopySeed = 0xc0b1;
constexpr uint64_t kGemmSeedA = 0x6e11;
constexpr uint64_t kGemmSeedB = 0x6e12;
// cuBLAS on Hopper asks for a 32 MiB workspace; giving it one up front keeps it from allocating.
constexpr int64_t kCublasWorkspaceBytes = int64_t{32} << 20;

int repeats(bool quick) { return quick ? 3 : 10; }

double measure_copy_gbps(bool quick, cudaStream_t stream) {
  DeviceMemory src = device_alloc(kCopyBytes);  // [kCopyBytes / 2] bf16
  DeviceMemory dst = device_alloc(kCopyBytes);
  fill_normal(src.get(), DType::bf16, kCopyBytes / 2, kCopySeed, stream);
  const Timing t = time_eager(
      [&](int) {
        BENCH_CUDA(cudaMemcpyAsync(dst.get(), src.get(), kCopyBytes, cudaMemcpyDeviceToDevice, stream));
      },
      kCopiesPerRun, repeats(quick), stream);
  return 2.0 * static_cast<double>(kCopyBytes) / (t.median_us * 1e3);
}

double measure_gemm_tflops(bool quick, cudaStream_t stream) {
  const int64_t elems = kGemmN * kGemmN;
  DeviceMemory a = device_alloc(elems * 2);  // [n, n] bf16, column-major
  DeviceMemory b = device_alloc(elems * 2);  // [n, n] bf16
  DeviceMemory c = device_alloc(elems * 2);  // [n, n] bf16
  DeviceMemory workspace = device_alloc(kCublasWorkspaceBytes);
  fill_normal(a.get(), DType::bf16, elems, kGemmSeedA, stream);
  fill_normal(b.get(), DType::bf16, elems, kGemmSeedB, stream);
  const Cublas handle = make_cublas();
  BENCH_CUBLAS(cublasSetStream(handle.get(), stream));
  BENCH_CUBLAS(cublasSetWorkspace(handle.get(), workspace.get(), kCublasWorkspaceBytes));
  const float alpha = 1.0f;
  const float beta = 0.0f;
  const int n = static_cast<int>(kGemmN);
  const Timing t = time_eager(
      [&](int) {
        BENCH_CUBLAS(cublasGemmEx(handle.get(), CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, a.get(),
                                  CUDA_R_16BF, n, b.get(), CUDA_R_16BF, n, &beta, c.get(), CUDA_R_16BF, n,
                                  CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
      },
      kGemmsPerRun, repeats(quick), stream);
  const double flops = 2.0 * static_cast<double>(kGemmN) * static_cast<double>(kGemmN) *
                       static_cast<double>(kGemmN);
  return flops / (t.median_us * 1e6);
}

}  // namespace

Roofline measure_roofline(bool quick, cudaStream_t stream) {
  Roofline r;
  BENCH_CUDA(cudaGetDevice(&r.ordinal));
  cudaDeviceProp prop{};
  BENCH_CUDA(cudaGetDeviceProperties(&prop, r.ordinal));
  r.device = prop.name;
  r.cc_major = prop.major;
  r.cc_minor = prop.minor;
  r.sm_count = prop.multiProcessorCount;
  r.l2_bytes = prop.l2CacheSize;
  r.memory_bytes = static_cast<int64_t>(prop.totalGlobalMem);
  BENCH_CUDA(cudaDriverGetVersion(&r.driver_version));
  BENCH_CUDA(cudaRuntimeGetVersion(&r.runtime_version));
  r.copy_bytes = kCopyBytes;
  r.copy_gbps = measure_copy_gbps(quick, stream);
  r.gemm_n = kGemmN;
  r.gemm_tflops = measure_gemm_tflops(quick, stream);
  return r;
}

}  // namespace openmla::bench
