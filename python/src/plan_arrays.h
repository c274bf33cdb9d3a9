#pragma once
// A plan as two arrays, the shape FlashMLA's get_mla_metadata returns:
//   tile_scheduler_metadata  int32 [num_parts, words_per_part]  the whole plan buffer; its first dim
//                                                              carries num_parts
//   num_splits               int32 [b + 1]                     a view into that buffer: the exclusive
//                                                              prefix sum of splits per sequence
// Together they carry (b, num_parts), all that the schedule depends on; decode completes the
// PlanConfig with the shapes of q and k_cache.

#include <cstdint>

#include "arrays.h"
#include "openmla/plan.h"

namespace openmla::python {

struct PlanGeometry {
  int64_t num_parts;        // resolved
  int64_t words_per_part;   // int32 columns of tile_scheduler_metadata
  int64_t num_splits_word;  // where num_splits starts in tile_scheduler_metadata, in int32 words
};

// Resolves config.num_parts (0 picks one for the device) and sizes the arrays.
PlanGeometry plan_geometry(const PlanConfig& config);

// The Plan held by the two arrays, for a decode of q [b, s_q, h_q, d_qk] over
// k_cache [num_blocks, page_size, h_kv, d_qk]. Throws openmla::Error when the arrays are not a pair
// made by openmla.plan / get_mla_metadata; the shapes are then checked against the plan by decode.
Plan plan_from_arrays(const Input& tile_scheduler_metadata, const Input& num_splits, const TensorView& q,
                      const TensorView& k_cache);

// tile_scheduler_metadata must be int32 [num_parts, words_per_part] (TypeError / openmla::Error).
void check_schedule_array(const TensorView& tile_scheduler_metadata);

}  // namespace openmla::python
