#pragma once
// Owning handles of CUDA runtime objects for the programs around the library. Each CUDA handle is a
// pointer type, so std::unique_ptr with the object's destroy function does the job; make_* create
// them, checked.

#include <cuda_runtime.h>

#include <memory>
#include <type_traits>

#include "cuda_error.h"

namespace openmla::support {

template <auto Destroy>
struct Destroyer {
  template <typename P>
  void operator()(P p) const {
    Destroy(p);
  }
};

// An owning handle of P (a pointer type such as cudaStream_t) released with Destroy.
template <typename P, auto Destroy>
using Handle = std::unique_ptr<std::remove_pointer_t<P>, Destroyer<Destroy>>;

using Stream = Handle<cudaStream_t, cudaStreamDestroy>;
using Event = Handle<cudaEvent_t, cudaEventDestroy>;
using Graph = Handle<cudaGraph_t, cudaGraphDestroy>;
using GraphExec = Handle<cudaGraphExec_t, cudaGraphExecDestroy>;

// A stream that does not synchronize with the legacy default stream.
inline Stream make_stream() {
  cudaStream_t s = nullptr;
  SUPPORT_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return Stream(s);
}

inline Event make_event() {
  cudaEvent_t e = nullptr;
  SUPPORT_CUDA(cudaEventCreate(&e));
  return Event(e);
}

// Ends the capture on `stream` and instantiates what it recorded (the recorded graph itself is freed).
inline GraphExec end_capture(cudaStream_t stream) {
  cudaGraph_t captured = nullptr;
  SUPPORT_CUDA(cudaStreamEndCapture(stream, &captured));
  const Graph graph(captured);
  cudaGraphExec_t instantiated = nullptr;
  SUPPORT_CUDA(cudaGraphInstantiate(&instantiated, graph.get(), 0));
  return GraphExec(instantiated);
}

}  // namespace openmla::support
