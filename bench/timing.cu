#include "timing.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

#include "cuda_check.h"

namespace openmla::bench {

namespace {

constexpr int kMaxCalls = 2000;

class Events {
 public:
  Events() {
    BENCH_CUDA(cudaEventCreate(&start_));
    BENCH_CUDA(cudaEventCreate(&stop_));
  }
  Events(const Events&) = delete;
  Events& operator=(const Events&) = delete;
  ~Events() {
    cudaEventDestroy(start_);
    cudaEventDestroy(stop_);
  }
  cudaEvent_t start() const { return start_; }
  cudaEvent_t stop() const { return stop_; }

  float elapsed_ms() const {
    BENCH_CUDA(cudaEventSynchronize(stop_));
    float ms = 0.0f;
    BENCH_CUDA(cudaEventElapsedTime(&ms, start_, stop_));
    return ms;
  }

 private:
  cudaEvent_t start_ = nullptr;
  cudaEvent_t stop_ = nullptr;
};

// Times `repeats` runs of `run` (after one warm-up) and reduces them to per-call statistics.
Timing time_runs(const std::function<void()>& run, int calls, int repeats, cudaStream_t stream) {
  if (calls < 1 || repeats < 1) {
    throw std::invalid_argument("timing: calls >= 1 and repeats >= 1 expected");
  }
  Events events;
  run();
  BENCH_CUDA(cudaStreamSynchronize(stream));
  std::vector<double> us;  // [repeats] per-call times
  for (int r = 0; r < repeats; ++r) {
    BENCH_CUDA(cudaEventRecord(events.start(), stream));
    run();
    BENCH_CUDA(cudaEventRecord(events.stop(), stream));
    us.push_back(1000.0 * events.elapsed_ms() / calls);
  }
  std::sort(us.begin(), us.end());
  const size_t n = us.size();
  const double median = n % 2 == 1 ? us[n / 2] : 0.5 * (us[n / 2 - 1] + us[n / 2]);
  return Timing{.median_us = median, .min_us = us.front(), .max_us = us.back(), .calls = calls,
                .repeats = repeats};
}

// Owns a graph captured from `stream`; a launch that throws mid-capture still ends the capture.
class CapturedGraph {
 public:
  CapturedGraph(const std::function<void(int)>& launch, int calls, cudaStream_t stream) {
    BENCH_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
    try {
      for (int i = 0; i < calls; ++i) {
        launch(i);
      }
    } catch (...) {
      cudaGraph_t partial = nullptr;
      if (cudaStreamEndCapture(stream, &partial) == cudaSuccess && partial != nullptr) {
        cudaGraphDestroy(partial);
      }
      throw;
    }
    BENCH_CUDA(cudaStreamEndCapture(stream, &graph_));
    BENCH_CUDA(cudaGraphInstantiate(&exec_, graph_, 0));
  }
  CapturedGraph(const CapturedGraph&) = delete;
  CapturedGraph& operator=(const CapturedGraph&) = delete;
  ~CapturedGraph() {
    if (exec_ != nullptr) {
      cudaGraphExecDestroy(exec_);
    }
    if (graph_ != nullptr) {
      cudaGraphDestroy(graph_);
    }
  }
  cudaGraphExec_t exec() const { return exec_; }

 private:
  cudaGraph_t graph_ = nullptr;
  cudaGraphExec_t exec_ = nullptr;
};

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
  const CapturedGraph graph(launch, calls, stream);
  return time_runs([&] { BENCH_CUDA(cudaGraphLaunch(graph.exec(), stream)); }, calls, repeats, stream);
}

int calls_for(double estimate_us, double target_us, int multiple) {
  const double wanted = std::ceil(target_us / std::max(estimate_us, 1.0));
  const int calls = static_cast<int>(std::clamp(wanted, 1.0, static_cast<double>(kMaxCalls)));
  return (calls + multiple - 1) / multiple * multiple;
}

}  // namespace openmla::bench
