#pragma once
// OPENMLA_SM90_DEVICE_CODE is 1 only in the sm_90a compilation pass. wgmma needs the
// architecture-specific target (__CUDA_ARCH_FEAT_SM90_ALL), which the plain compute_90 pass and the
// sm_80 pass lack: device code of the Hopper kernel is written under `#if OPENMLA_SM90_DEVICE_CODE`,
// and those passes compile empty kernels that the host never launches (sm90/launch.cu selects the
// Hopper kernel only when the build has an sm_90a pass and the device is compute capability 9.0).

#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ == 900 && defined(__CUDA_ARCH_FEAT_SM90_ALL)
#define OPENMLA_SM90_DEVICE_CODE 1
#else
#define OPENMLA_SM90_DEVICE_CODE 0
#endif
