#include "openmla/decode.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "../core/schedule.h"
#include "../core/status.h"
#include "../core/workspace.h"
#include "backends.h"
#include "cache_format.h"
#include "check.h"
#include "checked.h"
#include "overlap.h"

namespace openmla {

static_assert(static_cast<int32_t>(StatusCode::negative_seqlen) == status::kNegativeSeqlen &&
              static_cast<int32_t>(StatusCode::too_few_pages) == status::kTooFewPages &&
              static_cast<int32_t>(StatusCode::page_out_of_range) == status::kPageOutOfRange &&
              static_cast<int32_t>(StatusCode::stale_plan) == status::kStalePlan &&
              static_cast<int32_t>(StatusCode::bad_plan) == status::kBadPlan &&
              static_cast<int32_t>(StatusCode::slot_out_of_range) == status::kSlotOutOfRange);
static_assert(kWorkspaceAlignment == workspace::kAlignment);

namespace {

using detail::check_size;
using detail::fail;

// Bytes of workspace for a plan of (batch, num_parts) serving a decode of s_q, h_q and d_v; throws when
// they do not fit in int64.
int64_t workspace_bytes(int64_t batch, int64_t num_parts, int64_t s_q, int64_t h_q, int64_t d_v) {
  const int64_t splits = schedule::max_splits(batch, num_parts);
  int64_t rows = 0;
  int64_t out_bytes = 0;
  int64_t bytes = 0;
  int64_t record_bytes = 0;  // at least 4 * workspace::record_words (num_parts >= 1)
  // The layout's terms, each rounded up by at most its alignment (workspace.h).
  if (!detail::checked_product({splits, s_q, h_q}, rows) || !detail::checked_product({rows, d_v, 4}, out_bytes) ||
      !detail::checked_product({num_parts, s_q * h_q + h_q, 8}, record_bytes) ||
      !detail::checked_sum({out_bytes, rows * 4, record_bytes, 3 * workspace::kAlignment}, bytes)) {
    fail("workspace", "a size below 2^63 bytes",
         "b = " + std::to_string(batch) + ", num_parts = " + std::to_string(num_parts) +
             ", s_q = " + std::to_string(s_q) + ", h_q = " + std::to_string(h_q) + " and d_v = " + std::to_string(d_v));
  }
  return workspace::layout(num_parts, splits, s_q, h_q, d_v).bytes;
}

void check_plan(const DecodeArgs& a) {
  if (a.plan == nullptr) {
    fail("plan", "a Plan made by openmla::plan", "nullptr");
  }
  const PlanConfig& c = a.plan->config;
  if (c.num_parts < 1 || c.num_parts > kMaxParts || a.plan->buffer.data == nullptr) {
    fail("plan", "a Plan made by openmla::plan", "an empty Plan");
  }
  const int64_t b = a.q.sizes[0];
  if (c.batch != b) {
    fail("plan.config.batch", "the decode's batch = " + std::to_string(b),
         "a plan made for " + std::to_string(c.batch));
  }
  if (!(c.device == a.q.device)) {
    fail("plan.config.device", detail::device_string(a.q.device), detail::device_string(c.device));
  }
  if (!(a.plan->buffer.device == a.q.device)) {
    fail("plan.buffer", "device " + detail::device_string(a.q.device), detail::device_string(a.plan->buffer.device));
  }
  const int64_t plan_bytes = schedule::layout(c.batch, c.num_parts).bytes;
  if (a.plan->buffer.bytes < plan_bytes) {
    fail("plan.buffer", ">= " + std::to_string(plan_bytes) + " bytes (plan_buffer_size)",
         std::to_string(a.plan->buffer.bytes) + " bytes");
  }
}

void check_workspace(const DecodeArgs& a, int64_t need) {
  if (a.workspace.data == nullptr) {
    fail("workspace", "a non-null data pointer", "nullptr");
  }
  if (!(a.workspace.device == a.q.device)) {
    fail("workspace", "device " + detail::device_string(a.q.device), detail::device_string(a.workspace.device));
  }
  if (a.workspace.bytes < need) {
    fail("workspace", ">= " + std::to_string(need) + " bytes (workspace_size)",
         std::to_string(a.workspace.bytes) + " bytes");
  }
  if (reinterpret_cast<uintptr_t>(a.workspace.data) % workspace::kAlignment != 0) {
    fail("workspace", std::to_string(workspace::kAlignment) + "-byte aligned data", "a misaligned pointer");
  }
}

// out, lse and the workspace are written: each element of out and lse has its own memory, and none of
// the three shares memory with an input (q, k_cache, k_scale, block_table, cache_seqlens, the plan buffer) or
// with another of them.
void check_memory(const DecodeArgs& a, int64_t workspace_need) {
  using detail::span_of;
  const detail::Named out{"out", span_of("out", a.out)};
  const detail::Named lse{"lse", span_of("lse", a.lse)};
  detail::check_no_self_overlap("out", a.out);
  detail::check_no_self_overlap("lse", a.lse);
  const detail::Named q{"q", span_of("q", a.q)};
  const detail::Named k_cache{"k_cache", span_of("k_cache", a.k_cache)};
  const detail::Named k_scale{"k_scale",
                              detail::has_scale(a.cache_format) ? span_of("k_scale", a.k_scale) : detail::Span{}};
  const detail::Named block_table{"block_table", span_of("block_table", a.block_table)};
  const detail::Named cache_seqlens{"cache_seqlens", span_of("cache_seqlens", a.cache_seqlens)};
  const PlanConfig& c = a.plan->config;
  const detail::Named plan{"plan buffer", span_of(a.plan->buffer, schedule::layout(c.batch, c.num_parts).bytes)};
  const detail::Named workspace{"workspace", span_of(a.workspace, workspace_need)};
  detail::check_disjoint(out, {q, k_cache, k_scale, block_table, cache_seqlens, plan, lse, workspace},
                         "no input or other output");
  detail::check_disjoint(lse, {q, k_cache, k_scale, block_table, cache_seqlens, plan, out, workspace},
                         "no input or other output");
  detail::check_disjoint(workspace, {q, k_cache, k_scale, block_table, cache_seqlens, plan, out, lse},
                         "no input or output");
}

// Shapes, dtypes and sizes first, then pointers, strides, the plan and the workspace: a view with a
// zero dimension gets the size rule it breaks as its message, whatever its pointer.
void check_args(const DecodeArgs& a) {
  const Device device = a.q.device;
  // fp32 is the CPU backend's extra dtype, for exact float models; the GPU kernels are bf16 / fp16.
  if (device.type == DeviceType::cpu) {
    detail::check_view("q", a.q, 4, "[b, s_q, h_q, d_qk]", {DType::bf16, DType::fp16, DType::fp32}, device);
  } else {
    detail::check_view("q", a.q, 4, "[b, s_q, h_q, d_qk]", {DType::bf16, DType::fp16}, device);
  }
  detail::check_view("block_table", a.block_table, 2, "[b, max_blocks_per_seq]", {DType::int32}, device);
  detail::check_view("cache_seqlens", a.cache_seqlens, 1, "[b]", {DType::int32}, device);
  const detail::CacheOperand cache{
      .k_cache = a.k_cache, .format = a.cache_format, .k_scale = a.k_scale, .device = device};
  detail::check_cache_views(cache, {a.q.dtype});
  detail::check_view("out", a.out, 4, "[b, s_q, h_q, d_v]", {a.q.dtype}, device);
  detail::check_view("lse", a.lse, 3, "[b, h_q, s_q]", {DType::fp32}, device);

  const int64_t b = a.q.sizes[0];
  const int64_t s_q = a.q.sizes[1];
  const int64_t h_q = a.q.sizes[2];
  const int64_t d_qk = a.q.sizes[3];
  detail::check_positive("q.size(1) (s_q)", s_q);
  detail::check_positive("q.size(2) (h_q)", h_q);
  detail::check_positive("q.size(3) (d_qk)", d_qk);
  detail::check_positive("k_cache.size(1) (page_size)", a.k_cache.sizes[1]);
  detail::check_positive("k_cache.size(2) (h_kv)", a.k_cache.sizes[2]);
  detail::check_at_most("q.size(0) (b)", b, kMaxBatch);
  detail::check_at_most("q.size(1) (s_q)", s_q, kMaxDim);
  detail::check_at_most("q.size(2) (h_q)", h_q, kMaxDim);
  detail::check_at_most("q.size(1) * q.size(2) (s_q * h_q)", s_q * h_q, kMaxDim);
  detail::check_at_most("k_cache.size(1) (page_size)", a.k_cache.sizes[1], kMaxDim);
  detail::check_cache_sizes(
      cache,
      {.d_qk = d_qk, .d_qk_name = "q.size(3) (d_qk)", .d_qk_from = "d_qk from q", .d_v = a.d_v, .d_v_name = "d_v"});
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
  detail::check_data("q", a.q);
  detail::check_data("k_cache", a.k_cache);
  detail::check_cache_data(cache);
  detail::check_data("block_table", a.block_table);
  detail::check_data("cache_seqlens", a.cache_seqlens);
  detail::check_data("out", a.out);
  detail::check_data("lse", a.lse);
  detail::check_last_dim_contiguous("q", a.q);
  detail::check_last_dim_contiguous("k_cache", a.k_cache);
  detail::check_last_dim_contiguous("out", a.out);
  if (a.softmax_scale && !std::isfinite(*a.softmax_scale)) {
    fail("softmax_scale", "a finite value", std::to_string(*a.softmax_scale));
  }
  check_plan(a);
  const int64_t workspace_need = workspace_bytes(b, a.plan->config.num_parts, s_q, h_q, a.d_v);
  check_workspace(a, workspace_need);
  check_memory(a, workspace_need);
}

// The CPU backend has one kernel.
void check_cpu_kernel(const DecodeArgs& a) {
  if (a.kernel != Kernel::automatic && a.kernel != Kernel::cpu) {
    fail("kernel", "automatic or cpu for a decode on the CPU", kernel_name(a.kernel));
  }
}

}  // namespace

int64_t workspace_size(const PlanConfig& config, int64_t d_v) {
  detail::check_positive("d_v", d_v);
  detail::check_at_most("d_v", d_v, kMaxDim);
  const PlanConfig c = resolve_plan_config(config);
  return workspace_bytes(c.batch, c.num_parts, c.s_q, c.h_q, d_v);
}

void decode(const DecodeArgs& args) {
  check_args(args);
  const float scale = args.softmax_scale ? *args.softmax_scale : 1.0f / std::sqrt(static_cast<float>(args.q.sizes[3]));
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

namespace {

// Words [first, first + n) of a status buffer or workspace, from the host or the device.
std::vector<int32_t> read_words(const Buffer& buffer, int64_t first, int64_t n, void* stream) {
  std::vector<int32_t> words(static_cast<size_t>(n));
  if (buffer.device.type == DeviceType::cpu) {
    std::copy_n(static_cast<const int32_t*>(buffer.data) + first, n, words.begin());
  } else {
    cuda::read_words(buffer, first, n, words.data(), stream);
  }
  return words;
}

// The status a buffer holds: one word, or a decode's record of one word per CTA (core/status.h).
int32_t status_word(const Buffer& buffer, void* stream) {
  // The record's header, or the single word of a buffer too small for one.
  const int64_t header_words = buffer.bytes / 4 >= status::kRecordHeaderWords ? status::kRecordHeaderWords : 1;
  const std::vector<int32_t> header = read_words(buffer, 0, header_words, stream);
  if (header[0] != status::kRecordMagic) {
    return header[0];
  }
  if (header_words < status::kRecordHeaderWords) {
    fail("workspace",
         "a status word or a decode's status record (>= " + std::to_string(4 * status::kRecordHeaderWords) + " bytes)",
         "a record's first word in " + std::to_string(buffer.bytes) + " bytes");
  }
  const int64_t capacity = buffer.bytes / 4 - status::kRecordHeaderWords;  // words after the header
  const int64_t n = header[1];
  if (n < 0 || n > capacity) {
    fail("workspace", "a status record of 0 to " + std::to_string(capacity) + " words (the buffer's size)",
         std::to_string(n) + " words");
  }
  const std::vector<int32_t> words = read_words(buffer, status::kRecordHeaderWords, n, stream);
  return status::first_offence(words.data(), n);
}

}  // namespace

DecodeStatus read_status(const Buffer& workspace, void* stream) {
  if (workspace.data == nullptr) {
    fail("workspace", "a non-null data pointer", "nullptr");
  }
  if (workspace.bytes < static_cast<int64_t>(sizeof(int32_t))) {
    fail("workspace", ">= 4 bytes (the status word)", std::to_string(workspace.bytes) + " bytes");
  }
  const status::Decoded decoded = status::decode(status_word(workspace, stream));
  return DecodeStatus{static_cast<StatusCode>(decoded.code), decoded.batch};
}

void check_status(const DecodeStatus& status) {
  const std::string sequence = status.batch < 0 ? "" : ", sequence " + std::to_string(status.batch);
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
    case StatusCode::stale_plan:
      fail("plan (device check" + sequence + ")", "a plan made for these cache_seqlens",
           "one made for a length with another number of key tiles; that sequence's out and lse are NaN");
    case StatusCode::bad_plan:
      fail("plan (device check" + sequence + ")", "a plan buffer written by openmla::plan for this batch",
           status.batch < 0 ? "one whose header or parts are not; out and lse rows are NaN"
                            : "one whose fields for this sequence are not; its out and lse are NaN");
    case StatusCode::slot_out_of_range:
      fail("slot_mapping (write_cache device check, token " + std::to_string(status.batch) + ")",
           "a slot below num_blocks * page_size, or a negative one (skip)",
           "one past the cache; that token was not written");
  }
  if (what == nullptr) {
    fail("status", "a StatusCode", std::to_string(static_cast<int32_t>(status.code)));
  }
  fail("cache_seqlens / block_table (device check" + sequence + ")", what,
       "an offending value; that sequence's out and lse are NaN");
}

}  // namespace openmla
