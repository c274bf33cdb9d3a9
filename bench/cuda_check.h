#pragma once
// Checks every CUDA runtime and cuBLAS call of the benchmark: a failure throws, naming the call and
// where it was made, so one broken case is reported instead of timing garbage.

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace openmla::bench {

inline void check_cuda(cudaError_t status, const char* call, const char* file, int line) {
  if (status != cudaSuccess) {
    throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + call + " failed: " +
                             cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")");
  }
}

inline void check_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + call + " failed: " +
                             cublasGetStatusName(status) + " (" + cublasGetStatusString(status) + ")");
  }
}

}  // namespace openmla::bench

#define BENCH_CUDA(call) ::openmla::bench::check_cuda((call), #call, __FILE__, __LINE__)
#define BENCH_CUBLAS(call) ::openmla::bench::check_cublas((call), #call, __FILE__, __LINE__)
// After a kernel launch: the launch error now, not at the next synchronizing call.
#define BENCH_LAUNCHED() BENCH_CUDA(cudaGetLastError())
