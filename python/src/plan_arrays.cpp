#include "plan_arrays.h"

#include <string>

#include "openmla/error.h"
#include "openmla/info.h"

namespace openmla::python {

namespace {

void check_int32(const char* name, const TensorView& view) {
  if (view.dtype != DType::int32) {
    throw nb::type_error(Error(name, "dtype int32", dtype_name(view.dtype)).what());
  }
}

}  // namespace

PlanGeometry plan_geometry(const PlanConfig& config) {
  const PlanConfig resolved = resolve_plan_config(config);
  const PlanLayout layout = plan_layout(resolved.batch, resolved.num_parts);
  const int64_t words = (layout.bytes + 3) / 4;
  return PlanGeometry{
      .num_parts = resolved.num_parts,
      .words_per_part = (words + resolved.num_parts - 1) / resolved.num_parts,
      .num_splits_word = layout.num_splits_offset / 4,
  };
}

void check_schedule_array(const TensorView& tile_scheduler_metadata) {
  check_int32("tile_scheduler_metadata", tile_scheduler_metadata);
  if (tile_scheduler_metadata.rank != 2 || tile_scheduler_metadata.sizes[0] < 1) {
    throw Error("tile_scheduler_metadata", "int32 [num_parts, words_per_part] with num_parts >= 1",
                "rank " + std::to_string(tile_scheduler_metadata.rank));
  }
}

Plan plan_from_arrays(const Input& tile_scheduler_metadata, const Input& num_splits, const TensorView& q,
                      const TensorView& k_cache) {
  const TensorView schedule_view = to_view("tile_scheduler_metadata", tile_scheduler_metadata, kInt32Dtype);
  const TensorView splits_view = to_view("num_splits", num_splits, kInt32Dtype);
  check_schedule_array(schedule_view);
  check_int32("num_splits", splits_view);
  if (splits_view.rank != 1 || splits_view.sizes[0] < 1) {
    throw Error("num_splits", "int32 [b + 1]",
                "rank " + std::to_string(splits_view.rank) + " of " + std::to_string(splits_view.numel()));
  }
  const int64_t batch = splits_view.sizes[0] - 1;
  const int64_t num_parts = schedule_view.sizes[0];
  const PlanLayout layout = plan_layout(batch, num_parts);
  const Buffer buffer = to_buffer("tile_scheduler_metadata", tile_scheduler_metadata);
  if (buffer.bytes < layout.bytes) {
    throw Error("tile_scheduler_metadata",
                ">= " + std::to_string(layout.bytes) + " bytes for b = " + std::to_string(batch) +
                    ", num_parts = " + std::to_string(num_parts),
                std::to_string(buffer.bytes) + " bytes");
  }
  if (static_cast<const char*>(splits_view.data) != static_cast<const char*>(buffer.data) + layout.num_splits_offset) {
    throw Error("num_splits", "the num_splits returned together with this tile_scheduler_metadata", "another array");
  }
  const bool shaped = q.rank == 4 && k_cache.rank == 4;
  const PlanConfig config{
      .batch = batch,
      .s_q = shaped ? q.sizes[1] : 0,
      .h_q = shaped ? q.sizes[2] : 0,
      .h_kv = shaped ? k_cache.sizes[2] : 0,
      .page_size = shaped ? k_cache.sizes[1] : 0,
      .device = schedule_view.device,
      .num_parts = num_parts,
  };
  return Plan{config, buffer};
}

}  // namespace openmla::python
