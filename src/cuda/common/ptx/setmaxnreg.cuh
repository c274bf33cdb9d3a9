#pragma once
// Per-warpgroup register budgets (sm_90a): one inline-asm function per instruction, each naming its
// PTX ISA section. Every warp of a warpgroup executes the same one; kRegs is a multiple of 8 in
// [24, 256], and the kernel was compiled with a register limit (launch bounds) the budgets fit.

namespace openmla::ptx {

// PTX ISA, miscellaneous instructions, setmaxnreg.dec: gives the warp's registers above kRegs back to
// the CTA's pool.
template <int kRegs>
__device__ __forceinline__ void setmaxnreg_dec() {
  static_assert(kRegs % 8 == 0 && kRegs >= 24 && kRegs <= 256, "setmaxnreg: a multiple of 8 in [24, 256]");
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}

// PTX ISA, miscellaneous instructions, setmaxnreg.inc: waits until the CTA's pool can raise the warp's
// registers to kRegs.
template <int kRegs>
__device__ __forceinline__ void setmaxnreg_inc() {
  static_assert(kRegs % 8 == 0 && kRegs >= 24 && kRegs <= 256, "setmaxnreg: a multiple of 8 in [24, 256]");
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}

}  // namespace openmla::ptx
