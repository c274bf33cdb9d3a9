#pragma once
// Warpgroup matrix multiply-accumulate (wgmma, sm_90a): one inline-asm function per instruction, each
// naming its PTX ISA section, plus the shared-memory matrix descriptor they take.
//
// Every wgmma here is issued by one whole warpgroup (128 threads), accumulates in fp32 and takes
// 16-bit inputs: T = __nv_bfloat16 or __half. Protocol (PTX ISA 9.7.15.7): wgmma_fence() before the
// first wgmma of a batch whose accumulator or A registers were touched by ordinary instructions,
// wgmma_commit() after the batch, wgmma_wait<N>() before reading its results; pin_registers keeps
// the compiler from moving accesses to those registers across the fence and the wait.

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

namespace openmla::ptx {

// The accumulator operand lists of m64n16 (8 fp32 registers per thread) and m64n32 (16).
#define OPENMLA_WGMMA_D8 "{%0, %1, %2, %3, %4, %5, %6, %7}"
#define OPENMLA_WGMMA_D8_OPERANDS(d) \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7])
#define OPENMLA_WGMMA_D16 "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15}"
#define OPENMLA_WGMMA_D16_OPERANDS(d)                                                                         \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), \
      "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15])
// The accumulator operand lists of m64n64 (32 fp32 registers per thread) and m64n256 (128).
#define OPENMLA_WGMMA_D32                                                  \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15," \
  " %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define OPENMLA_WGMMA_D32_OPERANDS(d)                                                                         \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), \
      "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),  \
      "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), \
      "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#define OPENMLA_WGMMA_D128                                                                       \
  "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15,"                       \
  " %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31,"             \
  " %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47,"             \
  " %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63,"             \
  " %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79,"             \
  " %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95,"             \
  " %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111," \
  " %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}"
#define OPENMLA_WGMMA_D128_OPERANDS(d)                                                                                \
  "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]),         \
      "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]),          \
      "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]),         \
      "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]),         \
      "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]),         \
      "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]),         \
      "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]),         \
      "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), "+f"(d[64]),         \
      "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), "+f"(d[72]),         \
      "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), "+f"(d[80]),         \
      "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]), "+f"(d[88]),         \
      "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]), "+f"(d[96]),         \
      "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]), "+f"(d[104]),    \
      "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]), "+f"(d[112]), \
      "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]), "+f"(d[120]), \
      "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])

// Shared-memory matrix descriptor, PTX ISA 9.7.15.5.1.2.2 ("Matrix Descriptor Format"), for an
// operand stored with the 128-byte swizzle whose repeating pattern (8 rows of 128 bytes) starts on a
// 1024-byte boundary:
//   bits  0-13  start address >> 4 (the hardware applies the swizzle to the address it forms, so a
//               start that moves within a 128-byte row, e.g. by 32 bytes per k16 step, stays valid)
//   bits 16-29  leading-dimension byte offset >> 4
//   bits 32-45  stride-dimension byte offset >> 4
//   bits 49-51  base offset: 0, since every pattern starts on a 1024-byte boundary
//   bits 62-63  swizzle mode: 1 = 128-byte swizzle
// The meaning of the two offsets depends on the operand's major-ness (PTX ISA 9.7.15.5.1.2.1); the
// callers say which values they pass and why.
__device__ __forceinline__ uint64_t smem_desc_sw128(uint32_t smem_addr, uint32_t leading_bytes, uint32_t stride_bytes) {
  return static_cast<uint64_t>((smem_addr & 0x3FFFF) >> 4) | static_cast<uint64_t>(leading_bytes >> 4) << 16 |
         static_cast<uint64_t>(stride_bytes >> 4) << 32 | uint64_t{1} << 62;
}

// The descriptor of the same operand layout `bytes` further on (a multiple of 16). Shared memory is
// below 256 KB, so the start-address field (bits 0-13) never carries into the next one and the offset
// adds to the low word alone: one integer add, where building each descriptor from its address takes
// five instructions.
__device__ __forceinline__ uint64_t smem_desc_advance(uint64_t desc, uint32_t bytes) {
  const uint32_t low = static_cast<uint32_t>(desc) + (bytes >> 4);
  return (desc & 0xFFFFFFFF00000000ull) | low;
}

// Not an instruction: an empty asm the compiler must assume reads and rewrites every register of
// `r`, so that ordinary code touching wgmma accumulators or A fragments is not moved across
// wgmma_fence / wgmma_wait.
template <typename R, int N>
__device__ __forceinline__ void pin_registers(R (&r)[N]) {
#pragma unroll
  for (int i = 0; i < N; ++i) {
    if constexpr (std::is_same_v<R, float>) {
      asm volatile("" : "+f"(r[i])::"memory");
    } else {
      asm volatile("" : "+r"(r[i])::"memory");
    }
  }
}

// PTX ISA 9.7.15.7.1, wgmma.fence: orders earlier register accesses of this warpgroup before the
// wgmma.mma_async that follow.
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }

// PTX ISA 9.7.15.7.2, wgmma.commit_group: the wgmma.mma_async issued since the last commit form one group.
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }

// PTX ISA 9.7.15.7.3, wgmma.wait_group: waits until at most `kPending` committed groups are unfinished.
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}

// PTX ISA 9.7.15.5.2, wgmma.mma_async m64n64k16, A and B from shared memory, both K-major
// (imm-trans 0): d[64 x 64] = A[64 x 16] . B[16 x 64] (+ d when `accumulate`).
template <typename T>
__device__ __forceinline__ void wgmma_m64n64k16_ss(float (&d)[32], uint64_t a_desc, uint64_t b_desc, bool accumulate) {
  const uint32_t scale_d = accumulate ? 1 : 0;
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " OPENMLA_WGMMA_D32 ", %32, %33, p, 1, 1, 0, 0;\n}\n"
        : OPENMLA_WGMMA_D32_OPERANDS(d)
        : "l"(a_desc), "l"(b_desc), "r"(scale_d)
        : "memory");
  } else {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 " OPENMLA_WGMMA_D32 ", %32, %33, p, 1, 1, 0, 0;\n}\n"
        : OPENMLA_WGMMA_D32_OPERANDS(d)
        : "l"(a_desc), "l"(b_desc), "r"(scale_d)
        : "memory");
  }
}

// PTX ISA 9.7.15.5.2, wgmma.mma_async m64n256k16, A from registers (four .b32 registers of two
// 16-bit values, the m64nNk16 A fragment of PTX ISA 9.7.15.5.1.1.1), B from shared memory, K-major
// (kTransB 0) or MN-major (kTransB 1): d[64 x 256] += A[64 x 16] . B[16 x 256].
template <typename T, int kTransB>
__device__ __forceinline__ void wgmma_m64n256k16_rs(float (&d)[128], const uint32_t (&a)[4], uint64_t b_desc) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %133, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 " OPENMLA_WGMMA_D128
        ", {%128, %129, %130, %131}, %132, p, 1, 1, %134;\n}\n"
        : OPENMLA_WGMMA_D128_OPERANDS(d)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b_desc), "r"(1), "n"(kTransB)
        : "memory");
  } else {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %133, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 " OPENMLA_WGMMA_D128
        ", {%128, %129, %130, %131}, %132, p, 1, 1, %134;\n}\n"
        : OPENMLA_WGMMA_D128_OPERANDS(d)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b_desc), "r"(1), "n"(kTransB)
        : "memory");
  }
}

// PTX ISA 9.7.15.5.2, wgmma.mma_async m64n256k16, A (K-major) and B from shared memory, B K-major
// (kTransB 0) or MN-major (kTransB 1): d[64 x 256] += A[64 x 16] . B[16 x 256].
template <typename T, int kTransB>
__device__ __forceinline__ void wgmma_m64n256k16_ss(float (&d)[128], uint64_t a_desc, uint64_t b_desc) {
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 " OPENMLA_WGMMA_D128
        ", %128, %129, p, 1, 1, 0, %131;\n}\n"
        : OPENMLA_WGMMA_D128_OPERANDS(d)
        : "l"(a_desc), "l"(b_desc), "r"(1), "n"(kTransB)
        : "memory");
  } else {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %130, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n256k16.f32.f16.f16 " OPENMLA_WGMMA_D128 ", %128, %129, p, 1, 1, 0, %131;\n}\n"
        : OPENMLA_WGMMA_D128_OPERANDS(d)
        : "l"(a_desc), "l"(b_desc), "r"(1), "n"(kTransB)
        : "memory");
  }
}

// PTX ISA 9.7.15.5.2, wgmma.mma_async m64n16k16 and m64n32k16 (kN), A and B from shared memory: A
// K-major (kTransA 0) or MN-major (kTransA 1), B K-major: d[64 x kN] = A[64 x 16] . B[16 x kN] (+ d
// when `accumulate`). The narrow schedule's products, whose N is the query rows.
template <typename T, int kN, int kTransA>
__device__ __forceinline__ void wgmma_m64nNk16_ss(float (&d)[kN / 2], uint64_t a_desc, uint64_t b_desc,
                                                  bool accumulate) {
  static_assert(kN == 16 || kN == 32, "m64n16k16 or m64n32k16");
  const uint32_t scale_d = accumulate ? 1 : 0;
  constexpr bool kBf16 = std::is_same_v<T, __nv_bfloat16>;
  if constexpr (kN == 16 && kBf16) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %10, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n16k16.f32.bf16.bf16 " OPENMLA_WGMMA_D8 ", %8, %9, p, 1, 1, %11, 0;\n}\n"
        : OPENMLA_WGMMA_D8_OPERANDS(d)
        : "l"(a_desc), "l"(b_desc), "r"(scale_d), "n"(kTransA)
        : "memory");
  } else if constexpr (kN == 16) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %10, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n16k16.f32.f16.f16 " OPENMLA_WGMMA_D8 ", %8, %9, p, 1, 1, %11, 0;\n}\n"
        : OPENMLA_WGMMA_D8_OPERANDS(d)
        : "l"(a_desc), "l"(b_desc), "r"(scale_d), "n"(kTransA)
        : "memory");
  } else if constexpr (kBf16) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n32k16.f32.bf16.bf16 " OPENMLA_WGMMA_D16 ", %16, %17, p, 1, 1, %19, 0;\n}\n"
        : OPENMLA_WGMMA_D16_OPERANDS(d)
        : "l"(a_desc), "l"(b_desc), "r"(scale_d), "n"(kTransA)
        : "memory");
  } else {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %18, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n32k16.f32.f16.f16 " OPENMLA_WGMMA_D16 ", %16, %17, p, 1, 1, %19, 0;\n}\n"
        : OPENMLA_WGMMA_D16_OPERANDS(d)
        : "l"(a_desc), "l"(b_desc), "r"(scale_d), "n"(kTransA)
        : "memory");
  }
}

// PTX ISA 9.7.15.5.2, wgmma.mma_async m64n16k16, A from registers (four .b32 registers of two 16-bit
// values, the m64nNk16 A fragment of PTX ISA 9.7.15.5.1.1.1), B from shared memory, K-major:
// d[64 x 16] = A[64 x 16] . B[16 x 16] (+ d when `accumulate`). The narrow schedule's products on an
// FP8 cache, whose A fragments are converted from e4m3 in registers.
template <typename T>
__device__ __forceinline__ void wgmma_m64n16k16_rs(float (&d)[8], const uint32_t (&a)[4], uint64_t b_desc,
                                                   bool accumulate) {
  const uint32_t scale_d = accumulate ? 1 : 0;
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %13, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n16k16.f32.bf16.bf16 " OPENMLA_WGMMA_D8
        ", {%8, %9, %10, %11}, %12, p, 1, 1, 0;\n}\n"
        : OPENMLA_WGMMA_D8_OPERANDS(d)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b_desc), "r"(scale_d)
        : "memory");
  } else {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %13, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n16k16.f32.f16.f16 " OPENMLA_WGMMA_D8
        ", {%8, %9, %10, %11}, %12, p, 1, 1, 0;\n}\n"
        : OPENMLA_WGMMA_D8_OPERANDS(d)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b_desc), "r"(scale_d)
        : "memory");
  }
}

// PTX ISA 9.7.15.5.2, wgmma.mma_async m64n64k16, A from registers (the m64nNk16 A fragment, as in
// wgmma_m64n16k16_rs), B from shared memory, K-major: d[64 x 64] = A[64 x 16] . B[16 x 64] (+ d when
// `accumulate`). The transposed schedule's products on an FP8 cache (64 query rows as N).
template <typename T>
__device__ __forceinline__ void wgmma_m64n64k16_rs(float (&d)[32], const uint32_t (&a)[4], uint64_t b_desc,
                                                   bool accumulate) {
  const uint32_t scale_d = accumulate ? 1 : 0;
  if constexpr (std::is_same_v<T, __nv_bfloat16>) {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.bf16.bf16 " OPENMLA_WGMMA_D32
        ", {%32, %33, %34, %35}, %36, p, 1, 1, 0;\n}\n"
        : OPENMLA_WGMMA_D32_OPERANDS(d)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b_desc), "r"(scale_d)
        : "memory");
  } else {
    asm volatile(
        "{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"
        "wgmma.mma_async.sync.aligned.m64n64k16.f32.f16.f16 " OPENMLA_WGMMA_D32
        ", {%32, %33, %34, %35}, %36, p, 1, 1, 0;\n}\n"
        : OPENMLA_WGMMA_D32_OPERANDS(d)
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b_desc), "r"(scale_d)
        : "memory");
  }
}

// The RS product of N = kN (16 or 64): wgmma_m64n16k16_rs or wgmma_m64n64k16_rs.
template <typename T, int kN>
__device__ __forceinline__ void wgmma_m64nNk16_rs(float (&d)[kN / 2], const uint32_t (&a)[4], uint64_t b_desc,
                                                  bool accumulate) {
  static_assert(kN == 16 || kN == 64, "m64n16k16 or m64n64k16");
  if constexpr (kN == 16) {
    wgmma_m64n16k16_rs<T>(d, a, b_desc, accumulate);
  } else {
    wgmma_m64n64k16_rs<T>(d, a, b_desc, accumulate);
  }
}

}  // namespace openmla::ptx

#undef OPENMLA_WGMMA_D8
#undef OPENMLA_WGMMA_D8_OPERANDS
#undef OPENMLA_WGMMA_D16
#undef OPENMLA_WGMMA_D16_OPERANDS
#undef OPENMLA_WGMMA_D32
#undef OPENMLA_WGMMA_D32_OPERANDS
#undef OPENMLA_WGMMA_D128
#undef OPENMLA_WGMMA_D128_OPERANDS
