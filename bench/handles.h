#pragma once
// Owning handles of CUDA and cuBLAS objects: each is a pointer type, so std::unique_ptr with the
// object's destroy function does the job. make_* create them, checked.

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <memory>
#include <type_traits>

#include "cuda_check.h"

namespace openmla::bench {

template <auto Destroy>
struct Destroyer {
  template <typename P>
  void operator()(P p) const {
    Destroy(p);
  }
};

template <typename P, auto Destroy>
using Handle = std::unique_ptr<std::remove_pointer_t<P>, Destroyer<Destroy>>;

using Stream = Handle<cudaStream_t, cudaStreamDestroy>;
using Event = Handle<cudaEvent_t, cudaEventDestroy>;
using Graph = Handle<cudaGraph_t, cudaGraphDestroy>;
using GraphExec = Handle<cudaGraphExec_t, cudaGraphExecDestroy>;
using Cublas = Handle<cublasHandle_t, cublasDestroy>;

inline Stream make_stream() {
  cudaStream_t s = nullptr;
  BENCH_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return Stream(s);
}

inline Event make_event() {
  cudaEvent_t e = nullptr;
  BENCH_CUDA(cudaEventCreate(&e));
  return Event(e);
}

inline Cublas make_cublas() {
  cublasHandle_t h = nullptr;
  BENCH_CUBLAS(cublasCreate(&h));
  return Cublas(h);
}

}  // namespace openmla::bench
