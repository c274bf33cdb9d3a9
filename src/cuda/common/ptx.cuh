#pragma once
// One inline-asm wrapper per PTX instruction used by the portable kernel (sm_80+), each naming the
// PTX ISA chapter that defines it.

#include <cstdint>

namespace openmla::ptx {

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// PTX ISA, data movement, cp.async: 16 bytes global -> shared, bypassing L1; src_bytes = 0 writes zeros and
// reads nothing.
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, uint32_t src_bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes) : "memory");
}

// PTX ISA, data movement, cp.async: 4 bytes global -> shared, through L1.
__device__ __forceinline__ void cp_async_4(uint32_t dst, const void* src) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 4;\n" ::"r"(dst), "l"(src) : "memory");
}

// PTX ISA, data movement, cp.async.wait_all: every cp.async of the thread has completed.
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }

// PTX ISA, data movement, cp.async.commit_group.
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

// PTX ISA, data movement, cp.async.wait_group: at most n groups still pending.
template <int n>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(n) : "memory");
}

// PTX ISA, warp-level matrix load, ldmatrix: four 8x8 b16 matrices; lane l gives the address of
// row l % 8 of matrix l / 8.
__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// PTX ISA, warp-level matrix load, ldmatrix: two 8x8 b16 matrices; lanes 0..15 give the addresses.
__device__ __forceinline__ void ldmatrix_x2(uint32_t (&r)[2], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0, %1}, [%2];\n" : "=r"(r[0]), "=r"(r[1]) : "r"(addr));
}

// PTX ISA, warp-level matrix load, ldmatrix: one 8x8 b16 matrix; lanes 0..7 give the addresses.
__device__ __forceinline__ uint32_t ldmatrix_x1(uint32_t addr) {
  uint32_t r;
  asm volatile("ldmatrix.sync.aligned.m8n8.x1.shared.b16 {%0}, [%1];\n" : "=r"(r) : "r"(addr));
  return r;
}

// PTX ISA, warp-level matrix load, ldmatrix .trans: the same, each matrix transposed.
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

// PTX ISA, warp-level matrix multiply-accumulate, mma.sync m16n8k16, bf16 inputs, fp32 accumulators: d = a * b + d.
__device__ __forceinline__ void mma_bf16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// PTX ISA, warp-level matrix multiply-accumulate, mma.sync m16n8k16, fp16 inputs, fp32 accumulators.
__device__ __forceinline__ void mma_fp16(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// PTX ISA, floating-point instructions, ex2: 2^x, approximate; results below 2^-126 flush to zero.
__device__ __forceinline__ float ex2(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
  return y;
}

// PTX ISA 9.7.8.1, selp.f32: `upper ? a : b`, as one select the compiler cannot turn into an indexed
// load of a local array when a and b are elements of one (which puts that array in local memory).
__device__ __forceinline__ float select(bool upper, float a, float b) {
  float r;
  asm("{\n.reg .pred p;\nsetp.ne.b32 p, %3, 0;\nselp.f32 %0, %1, %2, p;\n}\n"
      : "=f"(r)
      : "f"(a), "f"(b), "r"(static_cast<int>(upper)));
  return r;
}

// PTX ISA, parallel synchronization, bar.sync: named barrier `id` (1..15; 0 is __syncthreads) for
// `threads` threads, a multiple of 32.
__device__ __forceinline__ void named_barrier(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}

// PTX ISA, data movement, prefetch.global.L1: starts bringing the line of `address` into L1 without
// waiting for it (a later load of the line waits for the same fill); never faults.
__device__ __forceinline__ void prefetch_l1(const void* address) {
  asm volatile("prefetch.global.L1 [%0];\n" ::"l"(reinterpret_cast<uint64_t>(address)));
}

// threadIdx.x, read where it is called: values derived from it are computed there, not hoisted out
// of a kernel's loops and kept in registers (or spilled) across its hot loop.
__device__ __forceinline__ int thread_index_here() {
  int x;
  asm volatile("mov.u32 %0, %%tid.x;\n" : "=r"(x));
  return x;
}

// PTX ISA, data movement, prefetch.global.L2: starts bringing the line of `address` into L2; never faults.
__device__ __forceinline__ void prefetch_l2(const void* address) {
  asm volatile("prefetch.global.L2 [%0];\n" ::"l"(reinterpret_cast<uint64_t>(address)));
}

// PTX ISA, control flow, griddepcontrol.wait: block until the grids this one depends on have completed (a no-op when
// launched without programmatic dependence).
__device__ __forceinline__ void grid_dependency_wait() {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}

// PTX ISA, control flow, griddepcontrol.launch_dependents: let the dependent grid start launching.
__device__ __forceinline__ void launch_dependents() {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}

}  // namespace openmla::ptx
