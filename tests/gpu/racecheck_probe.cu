// A kernel with no race, for compute-sanitizer racecheck (scripts/gpu-check runs it in its sanitize
// step): thread 4k of warpgroup 0 stores, __syncthreads(), every thread loads, __syncthreads(), five
// rounds. What varies is what the two warpgroups do before each round with named barriers, the way
// the Hopper kernel's warpgroups do (docs/hopper-kernel.md, "racecheck"):
//   0: nothing                 1: one bar.sync of its own per warpgroup (equal counts)
//   2: warpgroup 0 two, 1 one  3: a hand-off: warpgroup 1 stores and bar.arrive, warpgroup 0 bar.sync
//                                 and loads, then __syncthreads()
// Every mode is correct, so every hazard racecheck reports here is one the tool infers wrongly.
// usage: openmla-racecheck-probe MODE   (exit status 0 when the kernel ran and its sums are right)

#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>

namespace {

constexpr int kThreads = 256;
constexpr int kRounds = 5;
constexpr int kBlocks = 4;

__device__ __forceinline__ void bar_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void bar_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// out[block, thread] = the sum of what the thread loaded: sum over rounds r of r + 4 (t % 32), plus in
// mode 3, for warpgroup 0, r + 128 + t.
__global__ void probe(int mode, int* out) {
  __shared__ int stored[kThreads / 2];  // [128] written by warpgroup 0, every 4th thread
  __shared__ int handed[kThreads / 2];  // [128] mode 3: written by warpgroup 1
  const int t = static_cast<int>(threadIdx.x);
  const int warpgroup = t / 128;
  int sum = 0;
  for (int r = 0; r < kRounds; ++r) {
    if (mode == 1 || mode == 2) {
      bar_sync(1 + warpgroup, 128);
      if (mode == 2 && warpgroup == 0) {
        bar_sync(1, 128);
      }
    }
    if (mode == 3) {
      if (warpgroup == 1) {
        handed[t - 128] = r + t;
        bar_arrive(3, kThreads);
      } else {
        bar_sync(3, kThreads);
        sum += handed[t];
      }
      __syncthreads();
    }
    if (warpgroup == 0 && t % 4 == 0) {
      stored[t] = r + t;
    }
    __syncthreads();
    sum += stored[(4 * t) % 128];
    __syncthreads();
  }
  out[blockIdx.x * kThreads + t] = sum;
}

int expected(int mode, int t) {
  int sum = 0;
  for (int r = 0; r < kRounds; ++r) {
    sum += r + (4 * t) % 128;
    if (mode == 3 && t < 128) {
      sum += r + 128 + t;
    }
  }
  return sum;
}

}  // namespace

int main(int argc, char** argv) {
  const int mode = argc > 1 ? std::atoi(argv[1]) : -1;
  if (mode < 0 || mode > 3) {
    std::fprintf(stderr, "usage: %s MODE (0-3)\n", argv[0]);
    return 2;
  }
  int* out = nullptr;
  if (cudaMalloc(&out, kBlocks * kThreads * sizeof(int)) != cudaSuccess) {
    std::fprintf(stderr, "cudaMalloc failed\n");
    return 1;
  }
  probe<<<kBlocks, kThreads>>>(mode, out);
  static int host[kBlocks * kThreads];
  const cudaError_t status = cudaMemcpy(host, out, sizeof(host), cudaMemcpyDeviceToHost);
  cudaFree(out);
  if (status != cudaSuccess) {
    std::fprintf(stderr, "mode %d: %s\n", mode, cudaGetErrorString(status));
    return 1;
  }
  int wrong = 0;
  for (int i = 0; i < kBlocks * kThreads; ++i) {
    wrong += host[i] != expected(mode, i % kThreads);
  }
  std::printf("mode %d: %d wrong sums\n", mode, wrong);
  return wrong == 0 ? 0 : 1;
}
