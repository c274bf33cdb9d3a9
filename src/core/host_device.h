#pragma once
// Marks functions compiled for both the host and the device, so that one algorithm serves both.

#if defined(__CUDACC__)
#define OPENMLA_HD __host__ __device__ __forceinline__
#else
#define OPENMLA_HD inline
#endif
