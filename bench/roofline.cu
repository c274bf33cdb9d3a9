#include <cublas_v2.h>

#include "cublas.h"
#include "cuda_error.h"
#include "cuda_memory.h"
#include "data.h"
#include "roofline.h"
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
  support::DeviceBuffer src(kCopyBytes);  // [kCopyBytes / 2] bf16
  support::DeviceBuffer dst(kCopyBytes);
  fill_normal(src.data(), DType::bf16, kCopyBytes / 2, kCopySeed, stream);
  const Timing t = time_eager(
      [&](int) { SUPPORT_CUDA(cudaMemcpyAsync(dst.data(), src.data(), kCopyBytes, cudaMemcpyDeviceToDevice, stream)); },
      kCopiesPerRun, repeats(quick), stream);
  return 2.0 * static_cast<double>(kCopyBytes) / (t.median_us * 1e3);
}

double measure_gemm_tflops(bool quick, cudaStream_t stream) {
  const int64_t elems = kGemmN * kGemmN;
  support::DeviceBuffer a(elems * 2);  // [n, n] bf16, column-major
  support::DeviceBuffer b(elems * 2);  // [n, n] bf16
  support::DeviceBuffer c(elems * 2);  // [n, n] bf16
  support::DeviceBuffer workspace(kCublasWorkspaceBytes);
  fill_normal(a.data(), DType::bf16, elems, kGemmSeedA, stream);
  fill_normal(b.data(), DType::bf16, elems, kGemmSeedB, stream);
  const Cublas handle = make_cublas();
  BENCH_CUBLAS(cublasSetStream(handle.get(), stream));
  BENCH_CUBLAS(cublasSetWorkspace(handle.get(), workspace.data(), kCublasWorkspaceBytes));
  const float alpha = 1.0f;
  const float beta = 0.0f;
  const int n = static_cast<int>(kGemmN);
  const Timing t = time_eager(
      [&](int) {
        BENCH_CUBLAS(cublasGemmEx(handle.get(), CUBLAS_OP_N, CUBLAS_OP_N, n, n, n, &alpha, a.data(), CUDA_R_16BF, n,
                                  b.data(), CUDA_R_16BF, n, &beta, c.data(), CUDA_R_16BF, n, CUBLAS_COMPUTE_32F,
                                  CUBLAS_GEMM_DEFAULT));
      },
      kGemmsPerRun, repeats(quick), stream);
  const double flops = 2.0 * static_cast<double>(kGemmN) * static_cast<double>(kGemmN) * static_cast<double>(kGemmN);
  return flops / (t.median_us * 1e6);
}

}  // namespace

Roofline measure_roofline(bool quick, cudaStream_t stream) {
  Roofline r;
  SUPPORT_CUDA(cudaGetDevice(&r.ordinal));
  cudaDeviceProp prop{};
  SUPPORT_CUDA(cudaGetDeviceProperties(&prop, r.ordinal));
  r.device = prop.name;
  r.cc_major = prop.major;
  r.cc_minor = prop.minor;
  r.sm_count = prop.multiProcessorCount;
  r.l2_bytes = prop.l2CacheSize;
  r.memory_bytes = static_cast<int64_t>(prop.totalGlobalMem);
  SUPPORT_CUDA(cudaDriverGetVersion(&r.driver_version));
  SUPPORT_CUDA(cudaRuntimeGetVersion(&r.runtime_version));
  r.copy_bytes = kCopyBytes;
  r.copy_gbps = measure_copy_gbps(quick, stream);
  r.gemm_n = kGemmN;
  r.gemm_tflops = measure_gemm_tflops(quick, stream);
  return r;
}

}  // namespace openmla::bench
