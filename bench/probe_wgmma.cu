// openmla-probe-wgmma: how fast the tensor pipe of one Hopper SM runs the wgmma shapes the Hopper
// kernel issues (and a few it could), with 1 or 2 warpgroups issuing. A probe, not part of the library:
// docs/hopper-kernel.md quotes its output.
//
// Each CTA (one per SM) fills 200 KB of shared memory with small bf16 values; each issuing warpgroup then
// issues kGroups groups of kSteps wgmma on one accumulator (A from shared memory or registers, B from
// shared memory, 128-byte swizzle, the operand addresses of a score product), committing and waiting
// per group, through the library's wgmma wrappers where it has them. It prints the SM clocks per wgmma of
// one warpgroup and the SM's tensor rate against 2,048 bf16 multiply-adds per clock (989 TFLOPS at
// 1.83 GHz on an H100's or H200's 132 SMs).
//
// usage: openmla-probe-wgmma        (a GPU of compute capability 9.0; built for sm_90a only)

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <vector>

#include "cuda/common/ptx/fence.cuh"
#include "cuda/common/ptx/wgmma.cuh"

namespace {

namespace ptx = openmla::ptx;

constexpr int kSmemBytes = 200 * 1024;
constexpr int kSteps = 36;   // wgmma per group: the k16 steps of a 576-deep score product
constexpr int kGroups = 64;  // groups per measurement
constexpr int kReps = 20;    // timed launches

// The shapes the library has no wrapper for (src/cuda/common/ptx/wgmma.cuh has the others), B K-major:
// d[64 x N] += A[64 x 16] . B[16 x N], bf16 in, fp32 out, A from registers (rs) or shared memory (ss).
__device__ __forceinline__ void rs_m64n32k16(float (&d)[16], const uint32_t (&a)[4], uint64_t b) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15"
      "}, {%16, %17, %18, %19}, %20, 1, 1, 1, 0;"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b)
      : "memory");
}

__device__ __forceinline__ void rs_m64n64k16(float (&d)[32], const uint32_t (&a)[4], uint64_t b) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31"
      "}, {%32, %33, %34, %35}, %36, 1, 1, 1, 0;"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),
        "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),
        "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b)
      : "memory");
}

__device__ __forceinline__ void ss_m64n128k16(float (&d)[64], uint64_t a, uint64_t b) {
  asm volatile(
      "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 {"
      "%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, "
      "%16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, "
      "%32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, "
      "%48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63"
      "}, %64, %65, 1, 1, 1, 0, 0;"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),
        "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),
        "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),
        "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]),
        "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]),
        "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]),
        "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]),
        "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
      : "l"(a), "l"(b)
      : "memory");
}

enum class A { smem, registers };

// One wgmma of the measured shape: d += A . B, A the descriptor `a_desc` or the fragment `a_frag`.
template <int N, A kA, int kTransB>
__device__ __forceinline__ void issue(float (&d)[N / 2], uint64_t a_desc, const uint32_t (&a_frag)[4], uint64_t b) {
  using T = __nv_bfloat16;
  constexpr bool kSmem = kA == A::smem;
  static_assert((N == 256) == (kTransB == 1), "B MN-major for the output product's shape, K-major for the others");
  if constexpr (N == 16 && kSmem) {
    ptx::wgmma_m64nNk16_ss<T, 16, 0>(d, a_desc, b, true);
  } else if constexpr (N == 16) {
    ptx::wgmma_m64n16k16_rs<T>(d, a_frag, b, true);
  } else if constexpr (N == 32 && kSmem) {
    ptx::wgmma_m64nNk16_ss<T, 32, 0>(d, a_desc, b, true);
  } else if constexpr (N == 32) {
    rs_m64n32k16(d, a_frag, b);
  } else if constexpr (N == 64 && kSmem) {
    ptx::wgmma_m64n64k16_ss<T>(d, a_desc, b, true);
  } else if constexpr (N == 64) {
    rs_m64n64k16(d, a_frag, b);
  } else if constexpr (N == 128 && kSmem) {
    ss_m64n128k16(d, a_desc, b);
  } else if constexpr (N == 256 && kSmem) {
    ptx::wgmma_m64n256k16_ss<T, 1>(d, a_desc, b);
  } else {
    static_assert(N == 256, "a shape issue() has");
    ptx::wgmma_m64n256k16_rs<T, 1>(d, a_frag, b);
  }
}

// One CTA per SM; warpgroups below kIssuing issue, the others return at once.
template <int N, A kA, int kTransB, int kIssuing>
__global__ void __launch_bounds__(256, 1) issue_rate(unsigned long long* clocks, float* sink) {
  extern __shared__ __align__(1024) char smem[];
  for (int i = static_cast<int>(threadIdx.x); i < kSmemBytes / 4; i += static_cast<int>(blockDim.x)) {
    reinterpret_cast<uint32_t*>(smem)[i] = 0x3c003c00u ^ (static_cast<uint32_t>(i) * 2654435761u & 0x00ff00ffu);
  }
  ptx::fence_proxy_async_shared();
  __syncthreads();
  const int warpgroup = static_cast<int>(threadIdx.x) / 128;
  if (warpgroup >= kIssuing) {
    return;
  }
  float d[N / 2] = {};
  uint32_t a[4][4];  // four A fragments, as a P V's k steps use
  for (int i = 0; i < 16; ++i) {
    a[i / 4][i % 4] = 0x3c003c00u + static_cast<uint32_t>(threadIdx.x) * i;
  }
  const uint32_t base = static_cast<uint32_t>(__cvta_generic_to_shared(smem));
  const uint32_t q = base + warpgroup * 8192;  // A: [64 rows][64 elements] chunks, 8 KB apart
  const uint32_t k = base + 80 * 1024;         // B: the same chunks (K-major) or V's [16 keys][N] (MN-major)
  const unsigned long long t0 = clock64();
  for (int g = 0; g < kGroups; ++g) {
    ptx::wgmma_fence();
#pragma unroll
    for (int s = 0; s < kSteps; ++s) {
      const uint32_t offset = s / 4 * 8192 + s % 4 * 32;
      const uint64_t b = kTransB ? ptx::smem_desc_sw128(k + s % 4 * 2048 + s / 4 % 2 * 8192, 8192, 1024)
                                 : ptx::smem_desc_sw128(k + offset, 16, 1024);
      issue<N, kA, kTransB>(d, ptx::smem_desc_sw128(q + offset, 16, 1024), a[s % 4], b);
    }
    ptx::wgmma_commit();
    ptx::wgmma_wait<0>();
  }
  const unsigned long long t1 = clock64();
  if (threadIdx.x % 128 == 0) {
    clocks[blockIdx.x * 2 + warpgroup] = t1 - t0;
  }
  float sum = 0.f;
  for (float v : d) {
    sum += v;
  }
  if (sum == 12345.f) {  // never: keeps the products from being optimized away
    sink[threadIdx.x] = sum;
  }
}

// The mean over the `ctas` CTAs (one per SM) of the first warpgroup's clocks, as one table row.
template <int N, A kA, int kTransB, int kIssuing>
bool measure(const char* name, int ctas) {
  auto* kernel = &issue_rate<N, kA, kTransB, kIssuing>;
  unsigned long long* clocks = nullptr;
  float* sink = nullptr;
  cudaEvent_t start = nullptr;
  cudaEvent_t stop = nullptr;
  bool ok = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes) == cudaSuccess &&
            cudaMalloc(&clocks, static_cast<size_t>(ctas) * 2 * sizeof(unsigned long long)) == cudaSuccess &&
            cudaMalloc(&sink, 256 * sizeof(float)) == cudaSuccess && cudaEventCreate(&start) == cudaSuccess &&
            cudaEventCreate(&stop) == cudaSuccess;
  float ms = 0.f;
  std::vector<unsigned long long> host(static_cast<size_t>(ctas) * 2);
  if (ok) {
    kernel<<<ctas, 256, kSmemBytes>>>(clocks, sink);  // warm-up
    cudaEventRecord(start);
    for (int r = 0; r < kReps; ++r) {
      kernel<<<ctas, 256, kSmemBytes>>>(clocks, sink);
    }
    cudaEventRecord(stop);
    ok = cudaEventSynchronize(stop) == cudaSuccess && cudaEventElapsedTime(&ms, start, stop) == cudaSuccess &&
         cudaMemcpy(host.data(), clocks, host.size() * sizeof(unsigned long long), cudaMemcpyDeviceToHost) ==
             cudaSuccess;
  }
  if (ok) {
    double mean = 0.0;
    for (int c = 0; c < ctas; ++c) {
      mean += static_cast<double>(host[2 * static_cast<size_t>(c)]) / ctas;
    }
    const double per_wgmma = mean / (kGroups * kSteps);
    const double ideal = 64.0 * N * 16 / 2048;  // SM clocks of one wgmma at the full tensor rate
    const double flops = 2.0 * 64 * N * 16 * kGroups * kSteps * kIssuing * ctas * kReps;
    std::printf("%-30s %7.1f %7.1f %6.1f%% %8.1f\n", name, per_wgmma, ideal, 100.0 * ideal * kIssuing / per_wgmma,
                flops / (ms * 1e-3) / 1e12);
  } else {
    std::printf("%-30s failed: %s\n", name, cudaGetErrorString(cudaGetLastError()));
  }
  cudaFree(clocks);
  cudaFree(sink);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ok;
}

}  // namespace

int main() {
  int sms = 0;
  if (cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0) != cudaSuccess) {
    std::printf("no CUDA device: %s\n", cudaGetErrorString(cudaGetLastError()));
    return 1;
  }
  std::printf("%-30s %7s %7s %7s %8s\n", "wgmma (warpgroups issuing)", "clk", "ideal", "rate", "TFLOPS");
  bool ok = measure<16, A::smem, 0, 1>("ss m64n16k16 (1)", sms);
  ok = measure<16, A::smem, 0, 2>("ss m64n16k16 (2)", sms) && ok;
  ok = measure<16, A::registers, 0, 2>("rs m64n16k16 (2)", sms) && ok;
  ok = measure<32, A::smem, 0, 1>("ss m64n32k16 (1)", sms) && ok;
  ok = measure<32, A::smem, 0, 2>("ss m64n32k16 (2)", sms) && ok;
  ok = measure<32, A::registers, 0, 2>("rs m64n32k16 (2)", sms) && ok;
  ok = measure<64, A::smem, 0, 1>("ss m64n64k16 (1)", sms) && ok;
  ok = measure<64, A::smem, 0, 2>("ss m64n64k16 (2)", sms) && ok;
  ok = measure<64, A::registers, 0, 2>("rs m64n64k16 (2)", sms) && ok;
  ok = measure<128, A::smem, 0, 2>("ss m64n128k16 (2)", sms) && ok;
  ok = measure<256, A::smem, 1, 1>("ss m64n256k16 trans-b (1)", sms) && ok;
  ok = measure<256, A::smem, 1, 2>("ss m64n256k16 trans-b (2)", sms) && ok;
  ok = measure<256, A::registers, 1, 2>("rs m64n256k16 trans-b (2)", sms) && ok;
  return ok ? 0 : 1;
}
