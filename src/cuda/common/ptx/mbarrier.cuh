#pragma once
// mbarrier wrappers (sm_90): one inline-asm function per instruction, each naming its PTX ISA section.
// Barriers live in shared memory as 8-byte words; `bar` is their shared-state-space address.

#include <cstdint>

namespace openmla::ptx {

// PTX ISA 9.7.13.15.9, mbarrier.init: the barrier starts in phase 0 expecting `count` arrivals.
__device__ __forceinline__ void mbarrier_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}

// PTX ISA 9.7.13.4, membar/fence (fence.mbarrier_init): makes preceding mbarrier.init visible to
// the async proxy (TMA completions) and the cluster.
__device__ __forceinline__ void fence_mbarrier_init() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}

// PTX ISA 9.7.13.15.13, mbarrier.arrive.expect_tx: the current phase also waits for `bytes` bytes of
// asynchronous copies (complete_tx), then this thread arrives (release, CTA scope).
__device__ __forceinline__ void mbarrier_arrive_expect_tx(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}

// PTX ISA 9.7.13.15.13, mbarrier.arrive: one arrival (release, CTA scope).
__device__ __forceinline__ void mbarrier_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}

// PTX ISA 9.7.13.15.16, mbarrier.try_wait.parity: true once the phase with parity `parity` (the
// current or the immediately preceding one) has completed (acquire, CTA scope); may suspend the
// thread for a system-dependent time first.
__device__ __forceinline__ bool mbarrier_try_wait_parity(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
      "selp.u32 %0, 1, 0, p;\n"
      "}\n"
      : "=r"(done)
      : "r"(bar), "r"(parity)
      : "memory");
  return done != 0;
}

// Spins on mbarrier_try_wait_parity until the phase with parity `parity` has completed.
__device__ __forceinline__ void mbarrier_wait(uint32_t bar, uint32_t parity) {
  while (!mbarrier_try_wait_parity(bar, parity)) {
  }
}

}  // namespace openmla::ptx
