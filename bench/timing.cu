#include <algorithm>
#include <chrono>
#include <cmath>
#include <exception>
#include <stdexcept>
#include <vector>

#include "cuda_error.h"
#include "cuda_handles.h"
#include "timing.h"

namespace openmla::bench {

namespace {

constexpr int kMaxCalls = 2000;

// Times `repeats` runs of `run` (after one warm-up) and reduces them to per-call statistics.
Timing time_runs(const std::function<void()>& run, int calls, int repeats, cudaStream_t stream) {
  if (calls < 1 || repeats < 1) {
    throw std::invalid_argument("timing: calls >= 1 and repeats >= 1 expected");
  }
  const support::Event start = support::make_event();
  const support::Event stop = support::make_event();
  run();
  SUPPORT_CUDA(cudaStreamSynchronize(stream));
  std::vector<double> us;  // [repeats] per-call times
  for (int r = 0; r < repeats; ++r) {
    SUPPORT_CUDA(cudaEventRecord(start.get(), stream));
    run();
    SUPPORT_CUDA(cudaEventRecord(stop.get(), stream));
    SUPPORT_CUDA(cudaEventSynchronize(stop.get()));
    float ms = 0.0f;
    SUPPORT_CUDA(cudaEventElapsedTime(&ms, start.get(), stop.get()));
    us.push_back(1000.0 * ms / calls);
  }
  std::sort(us.begin(), us.end());
  const size_t n = us.size();
  const double median = n % 2 == 1 ? us[n / 2] : 0.5 * (us[n / 2 - 1] + us[n / 2]);
  return Timing{.median_us = median,
                .min_us = us.front(),
                .max_us = us.back(),
                .calls = calls,
                .repeats = repeats,
                .graph_error = {}};
}

// Captures launch(0) .. launch(calls - 1) on `stream` into a graph (the host's seconds spent in the
// launches to *host_s when given); a launch that throws still ends the capture.
support::Graph capture_graph(const std::function<void(int)>& launch, int calls, cudaStream_t stream,
                             double* host_s = nullptr) {
  SUPPORT_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
  const auto start = std::chrono::steady_clock::now();
  try {
    for (int i = 0; i < calls; ++i) {
      launch(i);
    }
  } catch (...) {
    cudaGraph_t partial = nullptr;
    if (cudaStreamEndCapture(stream, &partial) == cudaSuccess) {
      support::Graph discarded(partial);
    }
    cudaGetLastError();  // the capture's error is not sticky: clear it for the next check
    throw;
  }
  if (host_s != nullptr) {
    *host_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  }
  cudaGraph_t raw = nullptr;
  SUPPORT_CUDA(cudaStreamEndCapture(stream, &raw));
  return support::Graph(raw);
}

// capture_graph, instantiated.
support::GraphExec capture(const std::function<void(int)>& launch, int calls, cudaStream_t stream) {
  const support::Graph graph = capture_graph(launch, calls, stream);
  cudaGraphExec_t exec = nullptr;
  SUPPORT_CUDA(cudaGraphInstantiate(&exec, graph.get(), 0));
  return support::GraphExec(exec);
}

}  // namespace

Timing time_eager(const std::function<void(int)>& launch, int calls, int repeats, cudaStream_t stream) {
  return time_runs(
      [&] {
        for (int i = 0; i < calls; ++i) {
          launch(i);
        }
      },
      calls, repeats, stream);
}

Timing time_graph(const std::function<void(int)>& launch, int calls, int repeats, cudaStream_t stream) {
  const support::GraphExec graph = capture(launch, calls, stream);
  return time_runs([&] { SUPPORT_CUDA(cudaGraphLaunch(graph.get(), stream)); }, calls, repeats, stream);
}

double host_us_per_call(const std::function<void(int)>& launch, int calls, cudaStream_t stream) {
  double host_s = 0.0;
  const support::Graph discarded = capture_graph(launch, calls, stream, &host_s);
  return 1e6 * host_s / calls;
}

Timing time_graph_or_eager(const std::function<void(int)>& launch, int calls, int repeats, cudaStream_t stream) {
  try {
    return time_graph(launch, calls, repeats, stream);
  } catch (const std::exception& e) {
    Timing t = time_eager(launch, calls, repeats, stream);
    t.graph_error = e.what();
    return t;
  }
}

int calls_for(double estimate_us, double target_us, int multiple) {
  const double wanted = std::ceil(target_us / std::max(estimate_us, 1.0));
  const int calls = static_cast<int>(std::clamp(wanted, 1.0, static_cast<double>(kMaxCalls)));
  return (calls + multiple - 1) / multiple * multiple;
}

}  // namespace openmla::bench
