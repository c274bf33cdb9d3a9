#pragma once
// Device timing with CUDA events. Small launches are captured into a CUDA graph and replayed, so the
// host's launch overhead stays out of the kernel's time; large ones (a 1 GiB copy, an 8192^3 GEMM) are
// timed as issued. Every time is per call: the median (and spread) of `repeats` timed runs.

#include <cuda_runtime.h>

#include <functional>
#include <string>

namespace openmla::bench {

struct Timing {
  double median_us = 0.0;
  double min_us = 0.0;
  double max_us = 0.0;
  int calls = 0;            // calls per timed run (per graph replay)
  int repeats = 0;          // timed runs
  std::string graph_error;  // why the calls could not be captured in a graph (then timed as issued)
};

// Issues launch(0) .. launch(calls - 1) on `stream` per run, after one untimed warm-up run.
Timing time_eager(const std::function<void(int)>& launch, int calls, int repeats, cudaStream_t stream);

// Captures launch(0) .. launch(calls - 1) on `stream` into one graph, replays it once untimed, then
// `repeats` times timed.
Timing time_graph(const std::function<void(int)>& launch, int calls, int repeats, cudaStream_t stream);

// time_graph, or time_eager with graph_error set when the calls cannot be captured (a host
// synchronization or allocation inside them): the numbers still come back, marked.
Timing time_graph_or_eager(const std::function<void(int)>& launch, int calls, int repeats, cudaStream_t stream);

// The host's time per call of launch(0) .. launch(calls - 1) while they are captured into a graph on
// `stream` (so nothing runs and the GPU never holds the host back): the checks and launch work each
// call does on the host, in microseconds. The graph is discarded. Throws what a launch throws.
double host_us_per_call(const std::function<void(int)>& launch, int calls, cudaStream_t stream);

// Calls per timed run so that a run lasts about target_us given a first estimate of one call, rounded
// up to a multiple of `multiple` (the input sets rotated through).
int calls_for(double estimate_us, double target_us, int multiple);

}  // namespace openmla::bench
