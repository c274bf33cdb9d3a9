#include "host_decode.h"

#include "mapped_buffer.h"
#include "openmla/plan.h"

namespace openmla::test {

DecodeArgs host_args(const Problem& p, const Output& output) {
  DecodeArgs args;
  args.q = p.q_view();
  args.k_cache = p.k_cache_view();
  args.block_table = p.block_table_view();
  args.cache_seqlens = p.seqlens_view();
  args.d_v = p.spec.d_v;
  args.softmax_scale = p.spec.softmax_scale;
  args.causal = p.spec.causal;
  args.out = output.out_view();
  args.lse = output.lse_view();
  return args;
}

Output host_decode(const Problem& p, int64_t num_parts, const Fp8Cache* cache) {
  const PlanConfig config{.batch = p.spec.b,
                          .s_q = p.spec.s_q,
                          .h_q = p.spec.h_q,
                          .h_kv = p.spec.h_kv,
                          .page_size = p.spec.page_size,
                          .device = Device{},
                          .num_parts = num_parts};
  // mmap'ed memory is page aligned, more than the plan (8 bytes) and workspace (256 bytes) need.
  const MappedBuffer plan_memory(static_cast<size_t>(plan_buffer_size(config)));
  const Plan plan = openmla::plan(config, p.seqlens_view(), Buffer{plan_memory.data(), plan_buffer_size(config)});
  return host_decode_with(p, plan, cache);
}

Output host_decode_with(const Problem& p, const Plan& plan, const Fp8Cache* cache) {
  PlanConfig shapes = plan.config;
  shapes.s_q = p.spec.s_q;
  shapes.h_q = p.spec.h_q;
  shapes.h_kv = p.spec.h_kv;
  const int64_t workspace_bytes = workspace_size(shapes, p.spec.d_v);
  const MappedBuffer workspace(static_cast<size_t>(workspace_bytes));
  Output output = make_output(p.spec);
  DecodeArgs args = host_args(p, output);
  if (cache != nullptr) {
    use_cache(args, *cache);
  }
  args.plan = &plan;
  args.workspace = Buffer{workspace.data(), workspace_bytes};
  decode(args);
  return output;
}

}  // namespace openmla::test
