#include "openmla/decode.h"

#include <cmath>
#include <string>

#include "../core/workspace.h"
#include "../core/schedule.h"
#include "../core/status.h"
#include "backends.h"
#include "check.h"

namespace openmla {

static_assert(static_cast<int32_t>(StatusCode::negative_seqlen) == status::kNegativeSeqlen &&
              static_cast<int32_t>(StatusCode::too_few_pages) == status::kTooFewPages &&
              static_cast<int32_t>(StatusCode::page_out_of_range) == status::kPageOutOfRange);

namespace {

using detail::check_size;
using detail::fail;

void check_plan(const DecodeArgs& a) {
  if (a.plan == nullptr) {
    fail("plan", "a Plan made by openmla::plan", "nullptr");
  }
  const PlanConfig& c = a.plan->config;
  if (c.num_parts < 1 || a.plan->buffer.data == nullptr) {
    fail("plan", "a Plan made by openmla::plan", "an empty Plan");
  }
  const int64_t b = a.q.sizes[0];
  const struct {
    const char* name;
    int64_t plan_value;
    int64_t given;
  } fields[] = {{"batch", c.batch, b},
                {"s_q", c.s_q, a.q.sizes[1]},
                {"h_q", c.h_q, a.q.sizes[2]},
                {"h_kv", c.h_kv, a.k_cache.sizes[2]},
                {"page_size", c.page_size, a.k_cache.sizes[1]}};
  for (const auto& f : fields) {
    if (f.plan_value != f.given) {
      fail(std::string("plan.config.") + f.name,
           "the decode's " + std::string(f.name) + " = " + std::to_string(f.given),
           "a plan made for " + std::to_string(f.plan_value));
    }
  }
  if (!(c.device == a.q.device)) {
    fail("plan.config.device", detail::device_string(a.q.device), detail::device_string(c.device));
  }
  const int64_t plan_bytes = schedule::layout(c.batch, c.num_parts).bytes;
  if (a.plan->buffer.bytes < plan_bytes) {
    fail("plan.buffer", ">= " + std::to_string(plan_bytes) + " bytes (plan_buffer_size)",
         std::to_string(a.plan->buffer.bytes) + " bytes");
  }
}

void check_workspace(const DecodeArgs& a) {
  if (a.workspace.data == nullptr) {
    fail("workspace", "a non-null data pointer", "nullptr");
  }
  if (!(a.workspace.device == a.q.device)) {
    fail("workspace", "device " + detail::device_string(a.q.device),
         detail::device_string(a.workspace.device));
  }
  const int64_t need = workspace_size(a.plan->config, a.d_v);
  if (a.workspace.bytes < need) {
    fail("workspace", ">= " + std::to_string(need) + " bytes (workspace_size)",
         std::to_string(a.workspace.bytes) + " bytes");
  }
  if (reinterpret_cast<uintptr_t>(a.workspace.data) % 256 != 0) {
    fail("workspace", "256-byte aligned data", "a misaligned pointer");
  }
}

void check_args(const DecodeArgs& a) {
  const Device device = a.q.device;
  detail::check_view("q", a.q, 4, "[b, s_q, h_q, d_qk]", {DType::bf16, DType::fp16}, device);
  detail::check_view("k_cache", a.k_cache, 4, "[num_blocks, page_size, h_kv, d_qk]", {a.q.dtype}, device);
  detail::check_view("block_table", a.block_table, 2, "[b, max_blocks_per_seq]", {DType::int32}, device);
  detail::check_view("cache_seqlens", a.cache_seqlens, 1, "[b]", {DType::int32}, device);
  detail::check_view("out", a.out, 4, "[b, s_q, h_q, d_v]", {a.q.dtype}, device);
  detail::check_view("lse", a.lse, 3, "[b, h_q, s_q]", {DType::fp32}, device);

  const int64_t b = a.q.sizes[0];
  const int64_t s_q = a.q.sizes[1];
  const int64_t h_q = a.q.sizes[2];
  const int64_t d_qk = a.q.sizes[3];
  detail::check_positive("q.size(0) (b)", b);
  detail::check_positive("q.size(1) (s_q)", s_q);
  detail::check_positive("q.size(2) (h_q)", h_q);
  detail::check_positive("q.size(3) (d_qk)", d_qk);
  detail::check_positive("k_cache.size(1) (page_size)", a.k_cache.sizes[1]);
  detail::check_positive("k_cache.size(2) (h_kv)", a.k_cache.sizes[2]);
  check_size("k_cache", a.k_cache, 3, d_qk, "d_qk from q");
  const int64_t h_kv = a.k_cache.sizes[2];
  if (h_q % h_kv != 0) {
    fail("q.size(2) (h_q)", "a multiple of h_kv = " + std::to_string(h_kv), std::to_string(h_q));
  }
  if (a.d_v < 1 || a.d_v > d_qk) {
    fail("d_v", "1 <= d_v <= d_qk = " + std::to_string(d_qk), std::to_string(a.d_v));
  }
  check_size("block_table", a.block_table, 0, b, "b from q");
  check_size("cache_seqlens", a.cache_seqlens, 0, b, "b from q");
  check_size("out", a.out, 0, b, "b from q");
  check_size("out", a.out, 1, s_q, "s_q from q");
  check_size("out", a.out, 2, h_q, "h_q from q");
  check_size("out", a.out, 3, a.d_v, "d_v");
  check_size("lse", a.lse, 0, b, "b from q");
  check_size("lse", a.lse, 1, h_q, "h_q from q");
  check_size("lse", a.lse, 2, s_q, "s_q from q");
  detail::check_last_dim_contiguous("q", a.q);
  detail::check_last_dim_contiguous("k_cache", a.k_cache);
  detail::check_last_dim_contiguous("out", a.out);
  if (a.softmax_scale && !std::isfinite(*a.softmax_scale)) {
    fail("softmax_scale", "a finite value", std::to_string(*a.softmax_scale));
  }
  check_plan(a);
  check_workspace(a);
}

// The CPU backend has one kernel.
void check_cpu_kernel(const DecodeArgs& a) {
  if (a.kernel != Kernel::automatic && a.kernel != Kernel::cpu) {
    fail("kernel", "automatic or cpu for a decode on the CPU", kernel_name(a.kernel));
  }
}

}  // namespace

const char* kernel_name(Kernel kernel) {
  switch (kernel) {
    case Kernel::automatic:
      return "automatic";
    case Kernel::portable:
      return "portable";
    case Kernel::sm90:
      return "sm90";
    case Kernel::cpu:
      return "cpu";
  }
  return "an unknown kernel value";
}

int64_t workspace_size(const PlanConfig& config, int64_t d_v) {
  detail::check_positive("d_v", d_v);
  const PlanConfig c = resolve_plan_config(config);
  return workspace::layout(schedule::max_splits(c.batch, c.num_parts), c.s_q, c.h_q, d_v).bytes;
}

void decode(const DecodeArgs& args) {
  check_args(args);
  const float scale = args.softmax_scale ? *args.softmax_scale
                                         : 1.0f / std::sqrt(static_cast<float>(args.q.sizes[3]));
  if (args.q.device.type == DeviceType::cpu) {
    check_cpu_kernel(args);
    cpu::check_values(args);
    cpu::decode(args, scale);
  } else {
    cuda::check_args(args);
    cuda::decode(args, scale);
  }
}

Kernel selected_kernel(const DecodeArgs& args) {
  check_args(args);
  if (args.q.device.type == DeviceType::cpu) {
    check_cpu_kernel(args);
    return Kernel::cpu;
  }
  cuda::check_args(args);
  return cuda::select_kernel(args);
}

DecodeStatus read_status(const Buffer& workspace, void* stream) {
  if (workspace.data == nullptr) {
    fail("workspace", "a non-null data pointer", "nullptr");
  }
  if (workspace.bytes < workspace::kStatusBytes) {
    fail("workspace", ">= " + std::to_string(workspace::kStatusBytes) + " bytes",
         std::to_string(workspace.bytes) + " bytes");
  }
  const int32_t word = workspace.device.type == DeviceType::cpu
                           ? *static_cast<const int32_t*>(workspace.data)
                           : cuda::read_status_word(workspace, stream);
  const status::Decoded decoded = status::decode(word);
  return DecodeStatus{static_cast<StatusCode>(decoded.code), decoded.batch};
}

void check_status(const DecodeStatus& status) {
  const char* what = nullptr;
  switch (status.code) {
    case StatusCode::ok:
      return;
    case StatusCode::negative_seqlen:
      what = "a non-negative length";
      break;
    case StatusCode::too_few_pages:
      what = "a length that fits in the block table row (s_k <= max_blocks_per_seq * page_size)";
      break;
    case StatusCode::page_out_of_range:
      what = "block indices in [0, num_blocks) for every page the sequence uses";
      break;
  }
  fail("cache_seqlens / block_table (device check, sequence " + std::to_string(status.batch) + ")",
       what, "an offending value; that sequence's out and lse are NaN");
}

}  // namespace openmla
