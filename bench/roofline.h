#pragma once
// The two ceilings of every case, measured on this device in this run: device-to-device copy bandwidth
// (bytes read + written) and the cuBLAS bf16 GEMM rate (fp32 accumulation, random operands).

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

namespace openmla::bench {

struct Roofline {
  std::string device;  // cudaDeviceProp::name
  int ordinal = 0;
  int cc_major = 0;
  int cc_minor = 0;
  int sm_count = 0;
  int64_t l2_bytes = 0;
  int64_t memory_bytes = 0;
  int driver_version = 0;  // e.g. 13000
  int runtime_version = 0;
  int64_t copy_bytes = 0;    // size of the copied buffer
  double copy_gbps = 0.0;    // (read + written) / time, 1e9 bytes/s
  int64_t gemm_n = 0;        // m = n = k
  double gemm_tflops = 0.0;  // 2 n^3 / time, 1e12 flop/s
};

// Reads the device's properties and measures both ceilings; `quick` times fewer repeats.
Roofline measure_roofline(bool quick, cudaStream_t stream);

}  // namespace openmla::bench
