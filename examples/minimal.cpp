// The smallest complete openmla program: one decode on the CPU, of one query row against a single key,
// so the result is known exactly (out = v, lse = the one scaled score). Paste it into a project that
// does find_package(openmla) and links openmla::openmla. Exits non-zero on any mismatch.

#include <openmla/openmla.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

int main() {
  constexpr int64_t kDQk = 576;
  constexpr int64_t kDV = 512;
  constexpr uint16_t kBf16One = 0x3f80;               // 1.0
  constexpr uint16_t kBf16Half = 0x3f00;              // 0.5
  std::vector<uint16_t> q(kDQk, kBf16Half);           // [1, 1, 1, d_qk]
  std::vector<uint16_t> k_cache(2 * kDQk, kBf16One);  // [2, 1, 1, d_qk]: page 1 holds the key
  std::vector<int32_t> block_table{1};                // [1, 1]
  std::vector<int32_t> seqlens{1};                    // [1]
  std::vector<uint16_t> out(kDV);                     // [1, 1, 1, d_v]
  std::vector<float> lse(1);                          // [1, 1, 1]

  const openmla::PlanConfig config{.batch = 1, .s_q = 1, .h_q = 1, .h_kv = 1, .page_size = 1};
  const openmla::TensorView lengths = openmla::make_view(seqlens.data(), openmla::DType::int32, {1});
  std::vector<int64_t> plan_buffer(static_cast<size_t>(openmla::plan_buffer_size(config) / 8 + 1));
  const openmla::Plan plan = openmla::plan(config, lengths, {plan_buffer.data(), openmla::plan_buffer_size(config)});
  const int64_t workspace_bytes = openmla::workspace_size(plan.config, kDV);
  constexpr int64_t kAlign = openmla::kWorkspaceAlignment;
  void* workspace = std::aligned_alloc(kAlign, static_cast<size_t>((workspace_bytes + kAlign - 1) / kAlign * kAlign));

  openmla::DecodeArgs args;
  args.q = openmla::make_view(q.data(), openmla::DType::bf16, {1, 1, 1, kDQk});
  args.k_cache = openmla::make_view(k_cache.data(), openmla::DType::bf16, {2, 1, 1, kDQk});
  args.block_table = openmla::make_view(block_table.data(), openmla::DType::int32, {1, 1});
  args.cache_seqlens = lengths;
  args.d_v = kDV;
  args.plan = &plan;
  args.workspace = {workspace, workspace_bytes};
  args.out = openmla::make_view(out.data(), openmla::DType::bf16, {1, 1, 1, kDV});
  args.lse = openmla::make_view(lse.data(), openmla::DType::fp32, {1, 1, 1});
  openmla::decode(args);
  std::free(workspace);

  const float want_lse = 0.5f * kDQk / std::sqrt(static_cast<float>(kDQk));
  bool ok = std::fabs(lse[0] - want_lse) <= 1e-4f * want_lse;
  for (uint16_t bits : out) {
    ok = ok && bits == kBf16One;
  }
  std::printf("openmla %s minimal: lse %.6f (want %.6f), out %s\n", OPENMLA_VERSION, lse[0], want_lse,
              ok ? "= v" : "WRONG");
  return ok ? 0 : 1;
}
