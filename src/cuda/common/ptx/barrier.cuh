#pragma once
// Named CTA barriers: one inline-asm function per instruction, each naming its PTX ISA section.
// Barrier 0 is __syncthreads; `id` in 1..15, `threads` a multiple of 32 counting every participant.

namespace openmla::ptx {

// PTX ISA 9.7.13.1, bar.sync: arrive at barrier `id` and wait until `threads` threads have arrived.
__device__ __forceinline__ void bar_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// PTX ISA 9.7.13.1, bar.arrive: arrive at barrier `id` (of `threads` threads) without waiting; the
// producing side of a hand-off whose consuming side runs bar.sync.
__device__ __forceinline__ void bar_arrive(int id, int threads) {
  asm volatile("bar.arrive %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// PTX ISA 9.7.13.1, barrier.sync (without .aligned): as bar.sync, but the threads may reach the
// barrier from different instructions and need not be converged: a CTA-wide barrier of warp roles
// whose code is compiled apart.
__device__ __forceinline__ void barrier_sync(int id, int threads) {
  asm volatile("barrier.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

}  // namespace openmla::ptx
