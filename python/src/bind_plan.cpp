// plan_geometry and plan: the split-KV schedule of one decoding step, into caller-allocated arrays.

#include <nanobind/stl/string.h>
#include <nanobind/stl/tuple.h>

#include <string>
#include <tuple>

#include "bindings.h"
#include "openmla/error.h"
#include "openmla/plan.h"
#include "plan_arrays.h"

namespace openmla::python {

namespace {

std::tuple<int64_t, int64_t, int64_t> geometry(int64_t batch, int64_t s_q, int64_t h_q, int64_t h_kv, int64_t num_parts,
                                               const std::string& device_type, int32_t device_index) {
  const PlanGeometry g = plan_geometry(PlanConfig{
      .batch = batch,
      .s_q = s_q,
      .h_q = h_q,
      .h_kv = h_kv,
      .device = to_device(device_type.c_str(), device_index),
      .num_parts = num_parts,
  });
  return {g.num_parts, g.words_per_part, g.num_splits_word};
}

void run_plan(const Input& cache_seqlens, const Output& tile_scheduler_metadata, uintptr_t stream, int64_t s_q,
              int64_t h_q, int64_t h_kv, int32_t cache_format) {
  const TensorView lengths = to_view("cache_seqlens", cache_seqlens, kInt32Dtype);
  const TensorView schedule = to_view("tile_scheduler_metadata", tile_scheduler_metadata, kInt32Dtype);
  check_schedule_array(schedule);
  if (lengths.rank != 1) {
    throw Error("cache_seqlens", "rank 1 [b]", "rank " + std::to_string(lengths.rank));
  }
  // num_parts is resolved already; the shapes and the cache format still balance the plan (what each
  // piece is charged).
  const PlanConfig config{.batch = lengths.sizes[0],
                          .s_q = s_q,
                          .h_q = h_q,
                          .h_kv = h_kv,
                          .device = lengths.device,
                          .num_parts = schedule.sizes[0],
                          .cache_format = static_cast<CacheFormat>(cache_format)};
  const Buffer buffer = to_buffer("tile_scheduler_metadata", tile_scheduler_metadata);
  nb::gil_scoped_release unlocked;
  plan(config, lengths, buffer, to_stream(stream));
}

}  // namespace

void bind_plan(nb::module_& m) {
  m.def("plan_geometry", &geometry, nb::arg("batch"), nb::arg("s_q"), nb::arg("h_q"), nb::arg("h_kv"),
        nb::arg("num_parts"), nb::arg("device_type"), nb::arg("device_index"),
        "(num_parts resolved, int32 words per part, int32 word where num_splits starts).");
  m.def("plan", &run_plan, nb::arg("cache_seqlens"), nb::arg("tile_scheduler_metadata"), nb::arg("stream"),
        nb::arg("s_q"), nb::arg("h_q"), nb::arg("h_kv"), nb::arg("cache_format"),
        "Computes the schedule for cache_seqlens [b] int32 into tile_scheduler_metadata "
        "[num_parts, words_per_part] int32, on the array's device (a kernel on `stream` for CUDA), balanced "
        "for decodes of s_q, h_q, h_kv and cache_format (the library's CacheFormat value).");
}

}  // namespace openmla::python
