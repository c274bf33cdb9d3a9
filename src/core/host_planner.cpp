#include "host_planner.h"

#include "schedule.h"

namespace openmla::schedule {

void build_on_host(const int32_t* seqlens, int64_t batch, int64_t num_parts, void* buffer) {
  const Layout l = layout(batch, num_parts);
  char* base = static_cast<char*>(buffer);
  auto* prefix = reinterpret_cast<int64_t*>(base + l.prefix_offset);     // [b + 1]
  auto* parts = reinterpret_cast<int32_t*>(base + l.parts_offset);       // [num_parts, kPartFields]
  auto* split_offset = reinterpret_cast<int32_t*>(base + l.split_offset_offset);  // [b + 1]
  prefix[0] = 0;
  for (int64_t i = 0; i < batch; ++i) {
    prefix[i + 1] = prefix[i] + seq_cost(seqlens[i]);
  }
  for (int64_t p = 0; p < num_parts; ++p) {
    store_part(parts, p, make_part(prefix, batch, num_parts, p));
  }
  const int64_t len = part_length(prefix[batch], num_parts);
  split_offset[0] = 0;
  for (int64_t i = 0; i < batch; ++i) {
    split_offset[i + 1] = split_offset[i] + num_splits(prefix, i, len);
  }
}

}  // namespace openmla::schedule
