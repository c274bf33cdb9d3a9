#include "measure.h"

#include <limits>
#include <stdexcept>
#include <string>

#include "check.h"
#include "data.h"
#include "openmla/decode.h"

namespace openmla::bench {

namespace {

constexpr double kRunTargetUs = 3000.0;  // length of one timed graph replay
constexpr double kQuickRunTargetUs = 1000.0;
constexpr int kRepeats = 15;
constexpr int kQuickRepeats = 5;
constexpr int kEstimateRepeats = 3;
constexpr int kHostCalls = 200;  // decode calls whose host time is averaged

}  // namespace

CaseResult measure_case(const Case& c, int64_t l2_bytes, bool quick, cudaStream_t stream) {
  const int sets = copies_to_defeat_l2(c, l2_bytes);
  const Problem p = make_problem(c, sets, stream);
  const PlanConfig config = plan_config(c, p.device);
  const DecodeBuffers buffers = allocate_decode_buffers(config, c.d_v);
  const Buffer& plan_buffer = buffers.plan;
  const Buffer& workspace = buffers.workspace;
  const TensorView seqlens = p.cache_seqlens_view();

  const Plan the_plan = plan(config, seqlens, plan_buffer, stream);
  for (int k = 0; k < sets; ++k) {
    const DecodeArgs args = p.args(k, the_plan, workspace, stream);
    decode(args);
    check_status(read_status(workspace, stream));
    const int64_t bad = count_nonfinite(args.out, stream);
    if (bad != 0) {
      throw std::runtime_error(std::to_string(bad) + " non-finite elements in out (input set " + std::to_string(k) +
                               ")");
    }
  }

  const double target_us = quick ? kQuickRunTargetUs : kRunTargetUs;
  const int repeats = quick ? kQuickRepeats : kRepeats;
  const auto run_decode = [&](int i) { decode(p.args(i % sets, the_plan, workspace, stream)); };
  const auto run_plan = [&](int) { plan(config, seqlens, plan_buffer, stream); };

  CaseResult r;
  r.shape = c;
  r.mean_s_k = p.mean_s_k;
  r.input_sets = sets;
  r.num_parts = config.num_parts;
  const double decode_estimate = time_eager(run_decode, 1, kEstimateRepeats, stream).median_us;
  r.decode = time_graph_or_eager(run_decode, calls_for(decode_estimate, target_us, sets), repeats, stream);
  const auto run_unqueried = [&](int i) {
    DecodeArgs args = p.args(i % sets, the_plan, workspace, stream);
    args.skip_pointer_queries = true;
    decode(args);
  };
  r.decode_host_us = std::numeric_limits<double>::quiet_NaN();
  r.decode_host_us_unqueried = std::numeric_limits<double>::quiet_NaN();
  if (r.decode.graph_error.empty()) {
    r.decode_host_us = host_us_per_call(run_decode, kHostCalls, stream);
    r.decode_host_us_unqueried = host_us_per_call(run_unqueried, kHostCalls, stream);
  }
  const double plan_estimate = time_eager(run_plan, 1, kEstimateRepeats, stream).median_us;
  r.plan = time_graph_or_eager(run_plan, calls_for(plan_estimate, target_us, 1), repeats, stream);
  check_status(read_status(workspace, stream));
  return r;
}

}  // namespace openmla::bench
