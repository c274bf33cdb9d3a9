// workspace_size, decode and check_status (the device status of the last decode).

#include <nanobind/stl/optional.h>
#include <nanobind/stl/string.h>

#include <optional>
#include <string>

#include "bindings.h"
#include "openmla/decode.h"
#include "openmla/error.h"
#include "plan_arrays.h"

namespace openmla::python {

namespace {

// The library's size plus the slack that lets the binding align any allocation itself.
int64_t python_workspace_size(const PlanConfig& config, int64_t d_v) {
  return openmla::workspace_size(config, d_v) + kWorkspaceAlignment - 1;
}

int64_t size_of_workspace(int64_t batch, int64_t s_q, int64_t h_q, int64_t d_v, int64_t num_parts,
                          const std::string& device_type, int32_t device_index) {
  return python_workspace_size(PlanConfig{.batch = batch,
                                          .s_q = s_q,
                                          .h_q = h_q,
                                          .device = to_device(device_type.c_str(), device_index),
                                          .num_parts = num_parts},
                               d_v);
}

// The size check in the binding's own terms (the library would report the aligned bytes). Left to
// decode when the plan does not fit q or is not a valid configuration: decode names that problem first.
void check_workspace_bytes(const Plan& plan, const TensorView& q, int64_t d_v, const Buffer& raw) {
  if (q.rank != 4 || plan.config.batch != q.sizes[0]) {
    return;
  }
  int64_t need = 0;
  try {
    need = python_workspace_size(plan.config, d_v);
  } catch (const Error&) {
    return;
  }
  if (raw.bytes < need) {
    throw Error("workspace", ">= " + std::to_string(need) + " bytes (openmla.workspace_size)",
                std::to_string(raw.bytes) + " bytes");
  }
}

// k_cache_e4m3: k_cache's uint8 bytes carry float8_e4m3fn values (cache_view, arrays.h).
void run_decode(const Input& q, const Input& k_cache, const Input& block_table, const Input& cache_seqlens,
                const Input& tile_scheduler_metadata, const Input& num_splits, const Output& workspace,
                const Output& out, const Output& lse, int64_t d_v, std::optional<float> softmax_scale, bool causal,
                int32_t cache_format, std::optional<Input> k_scale, bool k_cache_e4m3, uintptr_t stream) {
  DecodeArgs args{
      .q = to_view("q", q, kDecodeDtypes),
      .k_cache = cache_view(k_cache, k_cache_e4m3),
      .cache_format = static_cast<CacheFormat>(cache_format),
      .k_scale = k_scale ? to_view("k_scale", *k_scale, kFloat32Dtype) : TensorView{},
      .block_table = to_view("block_table", block_table, kInt32Dtype),
      .cache_seqlens = to_view("cache_seqlens", cache_seqlens, kInt32Dtype),
      .d_v = d_v,
      .softmax_scale = softmax_scale,
      .causal = causal,
      .out = to_view("out", out, kDecodeDtypes),
      .lse = to_view("lse", lse, kFloat32Dtype),
      .stream = to_stream(stream),
      // A DLPack CUDA array is memory of its device: the runtime need not be asked per call.
      .skip_pointer_queries = true,
  };
  const Plan plan = plan_from_arrays(tile_scheduler_metadata, num_splits, args.q, args.k_cache);
  const Buffer raw = to_buffer("workspace", workspace);
  check_workspace_bytes(plan, args.q, d_v, raw);
  args.plan = &plan;
  args.workspace = aligned_workspace(raw);
  nb::gil_scoped_release unlocked;
  decode(args);
}

void raise_status(const Output& workspace, uintptr_t stream) {
  const Buffer buffer = aligned_workspace(to_buffer("workspace", workspace));
  DecodeStatus status;
  {
    nb::gil_scoped_release unlocked;
    status = read_status(buffer, to_stream(stream));
  }
  check_status(status);
}

}  // namespace

void bind_decode(nb::module_& m) {
  m.def("workspace_size", &size_of_workspace, nb::arg("batch"), nb::arg("s_q"), nb::arg("h_q"), nb::arg("d_v"),
        nb::arg("num_parts"), nb::arg("device_type"), nb::arg("device_index"),
        "Bytes of workspace decode needs, alignment slack included.");
  m.def("decode", &run_decode, nb::arg("q"), nb::arg("k_cache"), nb::arg("block_table"), nb::arg("cache_seqlens"),
        nb::arg("tile_scheduler_metadata"), nb::arg("num_splits"), nb::arg("workspace"), nb::arg("out"), nb::arg("lse"),
        nb::arg("d_v"), nb::arg("softmax_scale").none(), nb::arg("causal"), nb::arg("cache_format"),
        nb::arg("k_scale").none(), nb::arg("k_cache_e4m3"), nb::arg("stream"),
        "Checks every argument, then writes out and lse (a kernel sequence on `stream` for CUDA).");
  m.def("check_status", &raise_status, nb::arg("workspace"), nb::arg("stream"),
        "Raises ValueError describing the device status of the last decode, if it is not ok.");
}

}  // namespace openmla::python
