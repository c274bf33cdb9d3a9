#include "write_cache.h"

#include <algorithm>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>

#include "cuda_error.h"
#include "cuda_memory.h"
#include "data.h"
#include "openmla/cache.h"

namespace openmla::bench {

namespace {

constexpr uint64_t kSlotSeed = 0x5eed0300;
constexpr uint64_t kRowSeed = 0x5eed0400;
constexpr int kL2Multiple = 4;  // the rotation covers this many times the L2 size
constexpr int kMaxSets = 1024;
constexpr int kCheckedRows = 8;  // rows of set 0 read back and compared before timing
constexpr double kRunTargetUs = 3000.0;
constexpr double kQuickRunTargetUs = 1000.0;
constexpr int kRepeats = 15;
constexpr int kQuickRepeats = 5;
constexpr int kEstimateRepeats = 3;
constexpr int64_t kElement = 2;  // bf16

const Device kDevice{DeviceType::cuda, 0};

// Sets of inputs so that the rotation reads several times the L2 size; at most every slot once.
int input_sets(const WriteCacheCase& c, int64_t l2_bytes) {
  const int64_t set = c.tokens * (c.d_v + c.d_rope) * kElement;
  const int64_t by_l2 = (kL2Multiple * l2_bytes + set - 1) / set;
  const int64_t by_slots = c.num_blocks * c.page_size / c.tokens;
  return static_cast<int>(std::clamp<int64_t>(std::min(by_l2, by_slots), 1, kMaxSets));
}

struct Inputs {
  support::DeviceBuffer kv_c;          // [sets * tokens, d_v] bf16
  support::DeviceBuffer k_pe;          // [sets * tokens, d_rope] bf16
  support::DeviceBuffer slot_mapping;  // [sets * tokens] int64, distinct slots
  support::DeviceBuffer k_cache;       // [num_blocks, page_size, 1, d_v + d_rope] bf16
  support::DeviceBuffer status;        // kWriteStatusBytes
  std::vector<int64_t> slots;          // host copy of slot_mapping
};

Inputs make_inputs(const WriteCacheCase& c, int sets, cudaStream_t stream) {
  const int64_t rows = sets * c.tokens;
  const int64_t d_qk = c.d_v + c.d_rope;
  Inputs in{.kv_c = support::DeviceBuffer(rows * c.d_v * kElement),
            .k_pe = support::DeviceBuffer(rows * c.d_rope * kElement),
            .slot_mapping = support::DeviceBuffer(rows * 8),
            .k_cache = support::DeviceBuffer(c.num_blocks * c.page_size * d_qk * kElement),
            .status = support::DeviceBuffer(kWriteStatusBytes),
            .slots = std::vector<int64_t>(static_cast<size_t>(c.num_blocks * c.page_size))};
  fill_normal(in.kv_c.data(), DType::bf16, rows * c.d_v, kRowSeed, stream);
  fill_normal(in.k_pe.data(), DType::bf16, rows * c.d_rope, kRowSeed + 1, stream);
  SUPPORT_CUDA(cudaMemsetAsync(in.k_cache.data(), 0, static_cast<size_t>(in.k_cache.bytes()), stream));
  std::iota(in.slots.begin(), in.slots.end(), int64_t{0});
  std::shuffle(in.slots.begin(), in.slots.end(), std::mt19937_64(kSlotSeed));
  in.slots.resize(static_cast<size_t>(rows));
  SUPPORT_CUDA(cudaStreamSynchronize(stream));
  in.slot_mapping.upload(in.slots.data(), rows * 8);
  reset_status(Buffer{in.status.data(), kWriteStatusBytes, kDevice}, stream);
  return in;
}

WriteCacheArgs args_of(const WriteCacheCase& c, const Inputs& in, int set, cudaStream_t stream) {
  const int64_t first = set * c.tokens;
  return WriteCacheArgs{
      .kv_c = make_view(in.kv_c.as<uint16_t>() + first * c.d_v, DType::bf16, {c.tokens, c.d_v}, kDevice),
      .k_pe = make_view(in.k_pe.as<uint16_t>() + first * c.d_rope, DType::bf16, {c.tokens, c.d_rope}, kDevice),
      .slot_mapping = make_view(in.slot_mapping.as<int64_t>() + first, DType::int64, {c.tokens}, kDevice),
      .k_cache = make_view(in.k_cache.data(), DType::bf16, {c.num_blocks, c.page_size, 1, c.d_v + c.d_rope}, kDevice),
      .status = Buffer{in.status.data(), kWriteStatusBytes, kDevice},
      .stream = stream,
  };
}

// The first rows of set 0 hold their token's [kv_c, k_pe].
void check_rows(const WriteCacheCase& c, const Inputs& in) {
  const int64_t d_qk = c.d_v + c.d_rope;
  for (int64_t t = 0; t < std::min<int64_t>(kCheckedRows, c.tokens); ++t) {
    std::vector<uint16_t> row(static_cast<size_t>(d_qk));
    std::vector<uint16_t> want(static_cast<size_t>(d_qk));
    in.k_cache.download(row.data(), d_qk * kElement, in.slots[static_cast<size_t>(t)] * d_qk * kElement);
    in.kv_c.download(want.data(), c.d_v * kElement, t * c.d_v * kElement);
    in.k_pe.download(want.data() + c.d_v, c.d_rope * kElement, t * c.d_rope * kElement);
    if (row != want) {
      throw std::runtime_error("write_cache: the row of token " + std::to_string(t) + " differs from its input");
    }
  }
}

}  // namespace

std::vector<WriteCacheCase> default_write_cache_cases() {
  return {WriteCacheCase{.tokens = 128}, WriteCacheCase{.tokens = 1024}, WriteCacheCase{.tokens = 16384}};
}

WriteCacheResult measure_write_cache(const WriteCacheCase& c, int64_t l2_bytes, bool quick, cudaStream_t stream) {
  const int sets = input_sets(c, l2_bytes);
  const Inputs in = make_inputs(c, sets, stream);
  const Buffer status{in.status.data(), kWriteStatusBytes, kDevice};
  for (int k = 0; k < sets; ++k) {
    write_cache(args_of(c, in, k, stream));
  }
  check_status(read_status(status, stream));
  check_rows(c, in);

  const auto run = [&](int i) { write_cache(args_of(c, in, i % sets, stream)); };
  const double estimate = time_eager(run, 1, kEstimateRepeats, stream).median_us;
  const double target_us = quick ? kQuickRunTargetUs : kRunTargetUs;
  WriteCacheResult r;
  r.shape = c;
  r.input_sets = sets;
  r.timing = time_graph_or_eager(run, calls_for(estimate, target_us, sets), quick ? kQuickRepeats : kRepeats, stream);
  r.bytes = static_cast<double>(c.tokens) * static_cast<double>(2 * (c.d_v + c.d_rope) * kElement + 8);
  check_status(read_status(status, stream));
  return r;
}

}  // namespace openmla::bench
