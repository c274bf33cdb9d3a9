#pragma once
// FP8 conversion (sm_89+): one inline-asm function per instruction, each naming its PTX ISA section.

#include <cstdint>

namespace openmla::ptx {

// PTX ISA 9.7.9.21, cvt (cvt.rn.f16x2.e4m3x2): the two e4m3 values in the low (kHigh false) or high
// (kHigh true) 16 bits of `word`, the lower byte first, as an fp16 pair (exact). Taking the half from
// a 32-bit register lets ptxas read it in place (F2FP ... R.H1) instead of shifting it down first.
template <bool kHigh>
__device__ __forceinline__ uint32_t cvt_f16x2_e4m3x2(uint32_t word) {
  uint32_t pair;
  if constexpr (kHigh) {
    asm("{\n .reg .b16 lo, hi;\n mov.b32 {lo, hi}, %1;\n cvt.rn.f16x2.e4m3x2 %0, hi;\n}\n" : "=r"(pair) : "r"(word));
  } else {
    asm("{\n .reg .b16 lo, hi;\n mov.b32 {lo, hi}, %1;\n cvt.rn.f16x2.e4m3x2 %0, lo;\n}\n" : "=r"(pair) : "r"(word));
  }
  return pair;
}

}  // namespace openmla::ptx
