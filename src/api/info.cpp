#include "openmla/info.h"

#include <string>

#include "../core/schedule.h"
#include "backends.h"
#include "check.h"
#include "openmla/plan.h"

namespace openmla {

bool cuda_built() { return cuda::available(); }

int32_t cuda_device_count() { return cuda::device_count(); }

bool cuda_available() { return cuda_built() && cuda_device_count() > 0; }

PlanLayout plan_layout(int64_t batch, int64_t num_parts) {
  if (batch < 0 || batch > kMaxBatch) {
    detail::fail("batch", "0 <= batch <= " + std::to_string(kMaxBatch), std::to_string(batch));
  }
  if (num_parts < 1 || num_parts > kMaxParts) {
    detail::fail("num_parts", "1 <= num_parts <= " + std::to_string(kMaxParts) + " (a resolved PlanConfig's)",
                 std::to_string(num_parts));
  }
  const schedule::Layout layout = schedule::layout(batch, num_parts);
  return PlanLayout{
      .bytes = layout.bytes,
      .num_splits_offset = layout.split_offset_offset,
      .num_splits_bytes = (batch + 1) * 4,
  };
}

}  // namespace openmla
