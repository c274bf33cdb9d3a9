#pragma once
// Proxy fences (sm_90): one inline-asm function per instruction, each naming its PTX ISA section.

namespace openmla::ptx {

// PTX ISA 9.7.13.4, membar/fence (fence.proxy.async.shared::cta): orders this thread's earlier
// generic-proxy accesses to shared memory (ordinary stores, cp.async) before later async-proxy
// accesses (wgmma operands, TMA). Every writing thread runs it before the barrier that publishes the data.
__device__ __forceinline__ void fence_proxy_async_shared() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}

}  // namespace openmla::ptx
