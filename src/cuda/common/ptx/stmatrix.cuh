#pragma once
// Warp-level matrix store (sm_90): one inline-asm function per instruction, naming its PTX ISA section.

#include <cstdint>

namespace openmla::ptx {

// PTX ISA 9.7.14.5.16 (stmatrix): stores four 8 x 8 matrices of 16-bit values from the warp's
// registers; register i of thread t holds row t / 4, elements 2 (t % 4) and 2 (t % 4) + 1 of matrix
// i (the layout of an mma / wgmma accumulator fragment packed to 16 bits), and lane l gives the
// shared address of row l % 8 of matrix l / 8 (16 bytes each).
__device__ __forceinline__ void stmatrix_x4(uint32_t addr, uint32_t r0, uint32_t r1, uint32_t r2, uint32_t r3) {
  asm volatile("stmatrix.sync.aligned.m8n8.x4.shared.b16 [%0], {%1, %2, %3, %4};\n" ::"r"(addr), "r"(r0), "r"(r1),
               "r"(r2), "r"(r3)
               : "memory");
}

}  // namespace openmla::ptx
