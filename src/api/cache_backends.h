#pragma once
// What src/api/cache.cpp asks of each backend. Arguments reach these already checked.

#include "openmla/cache.h"

namespace openmla::cpu {

// Throws naming the first token whose slot is >= num_blocks * page_size (slot_mapping is host memory).
void check_slots(const WriteCacheArgs& args);
void write_cache(const WriteCacheArgs& args);

}  // namespace openmla::cpu

namespace openmla::cuda {

void check_write_cache_args(const WriteCacheArgs& args);  // device pointers and index, beyond the common checks
void write_cache(const WriteCacheArgs& args);
void reset_status_word(const Buffer& status, void* stream);

}  // namespace openmla::cuda
