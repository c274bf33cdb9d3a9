// One DeepSeek-V3-shaped MLA decoding step on a paged latent cache built in process: b=16 sequences of
// about 2048 tokens (varlen), 128 query heads over one 576-wide latent KV head, d_v=512, pages of 64.
// Runs openmla's decode, checks it against a float64 reference with the tests' tolerances, and prints
// time and throughput. Exit status 0 when the result matches.

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "compare.h"
#include "host_decode.h"
#include "mapped_buffer.h"
#include "openmla/openmla.h"
#include "problem.h"
#include "reference.h"
#include "run.h"

namespace {

using openmla::demo::Run;
using openmla::test::Problem;

constexpr int kRepeats = 3;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

namespace openmla::demo {

// Plan once, then decode kRepeats times into host buffers; the CPU backend.
Run run_on_cpu(const Problem& problem) {
  const openmla::PlanConfig config{.batch = problem.spec.b,
                                   .s_q = problem.spec.s_q,
                                   .h_q = problem.spec.h_q,
                                   .h_kv = problem.spec.h_kv,
                                   .page_size = problem.spec.page_size};
  const int64_t plan_bytes = openmla::plan_buffer_size(config);
  const openmla::test::MappedBuffer plan_memory(static_cast<size_t>(plan_bytes));
  const openmla::Plan plan = openmla::plan(config, problem.seqlens_view(), {plan_memory.data(), plan_bytes});
  const int64_t workspace_bytes = openmla::workspace_size(plan.config, problem.spec.d_v);
  const openmla::test::MappedBuffer workspace(static_cast<size_t>(workspace_bytes));

  Run run{.output = openmla::test::make_output(problem.spec)};
  openmla::DecodeArgs args = openmla::test::host_args(problem, run.output);
  args.plan = &plan;
  args.workspace = {workspace.data(), workspace_bytes};
  std::vector<double> times;
  for (int r = 0; r < kRepeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    openmla::decode(args);
    times.push_back(seconds_since(start));
  }
  std::sort(times.begin(), times.end());
  run.seconds = times[times.size() / 2];
  return run;
}

}  // namespace openmla::demo

int main() {
  const openmla::test::ProblemSpec spec{.b = 16, .s_q = 1, .h_q = 128, .h_kv = 1, .s_k = 2048,
                                        .varlen = true, .page_size = 64, .seed = 2025};
  // The GPU when there is one, the CPU otherwise.
  const bool gpu = openmla::demo::cuda_device_count() > 0;
  const Problem problem = openmla::test::make_problem(spec);
  double mean_s_k = 0.0;
  for (int32_t s_k : problem.seqlens) {
    mean_s_k += s_k / static_cast<double>(spec.b);
  }
  std::printf("openmla %s demo: DeepSeek-V3 decode step\n", OPENMLA_VERSION);
  std::printf("  b=%lld s_q=%lld h_q=%lld h_kv=%lld d_qk=%lld d_v=%lld page=%lld bf16, varlen s_k mean %.0f "
              "(min %d, max %d)\n",
              static_cast<long long>(spec.b), static_cast<long long>(spec.s_q), static_cast<long long>(spec.h_q),
              static_cast<long long>(spec.h_kv), static_cast<long long>(spec.d_qk),
              static_cast<long long>(spec.d_v), static_cast<long long>(spec.page_size), mean_s_k,
              *std::min_element(problem.seqlens.begin(), problem.seqlens.end()),
              *std::max_element(problem.seqlens.begin(), problem.seqlens.end()));
  std::printf("backend: %s\n", gpu ? "cuda (GPU 0)" : "cpu (no GPU found)");

  const Run run = gpu ? openmla::demo::run_on_cuda(problem) : openmla::demo::run_on_cpu(problem);
  // DESIGN.md §4: bytes that must move (q, the used cache, out) and the FLOPs of both products.
  const double b = static_cast<double>(spec.b);
  const double rows = static_cast<double>(spec.s_q * spec.h_q);
  const double bytes = b * (rows * static_cast<double>(spec.d_qk) * 2 +
                            mean_s_k * static_cast<double>(spec.h_kv * spec.d_qk) * 2 +
                            rows * static_cast<double>(spec.d_v) * 2);
  const double flops = 2 * b * rows * mean_s_k * static_cast<double>(spec.d_qk + spec.d_v);
  std::printf("decode: %.3f ms (median)  %.2f GB/s  %.3f TFLOPS\n", run.seconds * 1e3,
              bytes / run.seconds * 1e-9, flops / run.seconds * 1e-12);

  const auto start = std::chrono::steady_clock::now();
  const openmla::test::Reference ref = openmla::test::reference_decode(problem);
  const double ref_seconds = seconds_since(start);
  const openmla::test::Comparison c = openmla::test::compare(ref, run.output.out_view(), run.output.lse_view());
  std::printf("float64 reference: %.3f s\ncheck: %s\n", ref_seconds, c.summary().c_str());
  std::printf("%s\n", c.ok() ? "PASS: matches the float64 reference within DESIGN.md tolerances" : "FAIL");
  return c.ok() ? 0 : 1;
}
