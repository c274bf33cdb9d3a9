#include "write_case.h"

#include <algorithm>
#include <numeric>
#include <random>

namespace openmla::test {

namespace {

constexpr uint16_t kCanary = 0xcafe;

TensorView strided(void* data, DType dtype, std::initializer_list<int64_t> sizes,
                   std::initializer_list<int64_t> strides) {
  TensorView v = make_view(data, dtype, sizes);
  int d = 0;
  for (int64_t s : strides) {
    v.strides[d++] = s;
  }
  return v;
}

}  // namespace

TensorView WriteCase::kv_c_view() { return strided(kv_c.data(), dtype, {tokens, d_v}, {d_v + row_pad, 1}); }

TensorView WriteCase::k_pe_view() { return strided(k_pe.data(), dtype, {tokens, d_rope}, {d_rope + row_pad, 1}); }

TensorView WriteCase::slot_mapping_view() { return make_view(slot_mapping.data(), DType::int64, {tokens}); }

TensorView WriteCase::k_cache_view() {
  return strided(k_cache.data(), dtype, {num_blocks, page_size, 1, d_qk()}, {page_stride(), d_qk(), d_qk(), 1});
}

int64_t row_offset(const WriteCase& c, int64_t slot) {
  return slot / c.page_size * c.page_stride() + slot % c.page_size * c.d_qk();
}

std::vector<uint16_t> WriteCase::expected_cache() const {
  std::vector<uint16_t> cache = k_cache;
  for (int64_t t = 0; t < tokens; ++t) {
    const int64_t slot = slot_mapping[t];
    if (slot < 0 || slot >= slots()) {
      continue;
    }
    uint16_t* row = cache.data() + row_offset(*this, slot);
    std::copy_n(kv_c.begin() + t * (d_v + row_pad), d_v, row);
    std::copy_n(k_pe.begin() + t * (d_rope + row_pad), d_rope, row + d_v);
  }
  return cache;
}

WriteCase make_write_case(DType dtype, int64_t tokens, int64_t d_v, int64_t d_rope, int64_t num_blocks,
                          int64_t page_size, uint64_t seed, int64_t row_pad, int64_t page_pad) {
  WriteCase c;
  c.dtype = dtype;
  c.tokens = tokens;
  c.d_v = d_v;
  c.d_rope = d_rope;
  c.num_blocks = num_blocks;
  c.page_size = page_size;
  c.row_pad = row_pad;
  c.page_pad = page_pad;
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> bits(0, 0xffff);
  c.kv_c.resize(static_cast<size_t>(tokens * (d_v + row_pad)));
  c.k_pe.resize(static_cast<size_t>(tokens * (d_rope + row_pad)));
  for (uint16_t& x : c.kv_c) {
    x = static_cast<uint16_t>(bits(rng));
  }
  for (uint16_t& x : c.k_pe) {
    x = static_cast<uint16_t>(bits(rng));
  }
  c.k_cache.assign(static_cast<size_t>(num_blocks * c.page_stride()), kCanary);
  std::vector<int64_t> slots(static_cast<size_t>(c.slots()));
  std::iota(slots.begin(), slots.end(), int64_t{0});
  std::shuffle(slots.begin(), slots.end(), rng);
  c.slot_mapping.assign(slots.begin(), slots.begin() + std::min(tokens, c.slots()));
  c.slot_mapping.resize(static_cast<size_t>(tokens), -1);
  return c;
}

}  // namespace openmla::test
