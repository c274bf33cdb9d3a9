#pragma once
// The benchmark's cuBLAS (the GEMM ceiling of the roofline): checked calls and an owning handle. CUDA
// runtime calls, memory and the other handles come from support/.

#include <cublas_v2.h>

#include <stdexcept>
#include <string>

#include "cuda_handles.h"

namespace openmla::bench {

inline void check_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + call +
                             " failed: " + cublasGetStatusName(status) + " (" + cublasGetStatusString(status) + ")");
  }
}

using Cublas = support::Handle<cublasHandle_t, cublasDestroy>;

inline Cublas make_cublas() {
  cublasHandle_t h = nullptr;
  check_cublas(cublasCreate(&h), "cublasCreate(&h)", __FILE__, __LINE__);
  return Cublas(h);
}

}  // namespace openmla::bench

#define BENCH_CUBLAS(call) ::openmla::bench::check_cublas((call), #call, __FILE__, __LINE__)
