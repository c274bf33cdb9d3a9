// Outputs that overlap themselves or share memory with an input or another output are refused before
// anything is written: decode would otherwise race with itself or overwrite what it still reads.

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "valid_decode.h"

namespace openmla::test {
namespace {

class Aliasing : public ValidDecode {
 protected:
  // Moves view `input` into the arena at kInputAt (a copy, so the decode reads the same values) and
  // returns the address of its first byte.
  template <typename T>
  char* move_to_arena(T& view, int64_t bytes) {
    char* at = static_cast<char*>(arena_.data()) + kInputAt;
    std::memcpy(at, view.data, static_cast<size_t>(bytes));
    view.data = at;
    return at;
  }

  // The same for the plan buffer.
  char* move_plan_to_arena() {
    char* at = static_cast<char*>(arena_.data()) + kInputAt;
    std::memcpy(at, plan_.buffer.data, static_cast<size_t>(plan_.buffer.bytes));
    plan_.buffer.data = at;
    return at;
  }

  static constexpr int64_t kInputAt = 1 << 20;
  MappedBuffer arena_{size_t{4} << 20};
};

int64_t bytes_of(const TensorView& view) { return view.numel() * dtype_size(view.dtype); }

TEST_F(Aliasing, OutWhoseRowsShareMemory) {
  args_.out.strides[2] = 0;  // every head of a token writes the same row
  expect_rejected({"out: expected strides under which no two elements share memory",
                   "given strides [4096, 2048, 0, 1] for sizes [2, 2, 4, 512]"});
  args_.out.strides[2] = 256;  // rows of 512 elements 256 apart
  expect_rejected({"out: expected strides under which no two elements share memory"});
}

TEST_F(Aliasing, LseWhoseRowsShareMemory) {
  args_.lse.strides[2] = 0;  // both query tokens of a head write the same lse
  expect_rejected({"lse: expected strides under which no two elements share memory",
                   "given strides [8, 2, 0] for sizes [2, 4, 2]"});
}

TEST_F(Aliasing, OverlappingButDisjointLayoutsAreAccepted) {
  // Heads interleaved with tokens: strides out of order, yet every element has its own memory.
  std::vector<uint16_t> out(output_.out.size(), kOutSentinel);
  args_.out.data = out.data();
  args_.out.strides[1] = 512;
  args_.out.strides[2] = 1024;
  EXPECT_NO_THROW(decode(args_));
}

TEST_F(Aliasing, OutSharingMemoryWithAnInput) {
  const int64_t out_bytes = bytes_of(args_.out);
  const struct {
    const char* name;
    std::function<char*()> move;
    int64_t bytes;
  } inputs[] = {
      {"q", [&] { return move_to_arena(args_.q, bytes_of(args_.q)); }, bytes_of(args_.q)},
      {"k_cache", [&] { return move_to_arena(args_.k_cache, bytes_of(args_.k_cache)); }, bytes_of(args_.k_cache)},
      {"block_table", [&] { return move_to_arena(args_.block_table, bytes_of(args_.block_table)); },
       bytes_of(args_.block_table)},
      {"cache_seqlens", [&] { return move_to_arena(args_.cache_seqlens, bytes_of(args_.cache_seqlens)); },
       bytes_of(args_.cache_seqlens)},
      {"plan buffer", [&] { return move_plan_to_arena(); }, plan_.buffer.bytes},
  };
  for (const auto& input : inputs) {
    SCOPED_TRACE(input.name);
    const DecodeArgs good = args_;
    const Plan good_plan = plan_;
    char* at = input.move();
    const std::vector<char> before(at, at + input.bytes);
    // out ends 2 bytes into the input; lse likewise in a second round.
    args_.out.data = at + 2 - out_bytes;
    expect_rejected({"out: expected memory that no input or other output shares",
                     std::string("given memory overlapping ") + input.name});
    EXPECT_EQ(std::memcmp(before.data(), at, before.size()), 0) << "the input was written";
    args_.out = good.out;
    args_.lse.data = at + 4 - bytes_of(args_.lse);
    expect_rejected({"lse: expected memory that no input or other output shares",
                     std::string("given memory overlapping ") + input.name});
    args_ = good;
    plan_ = good_plan;
  }
}

TEST_F(Aliasing, OutputsSharingMemoryWithEachOther) {
  char* arena = static_cast<char*>(arena_.data());
  args_.out.data = arena;
  args_.lse.data = arena + bytes_of(args_.out) - 4;  // lse starts on out's last two elements
  expect_rejected({"out: expected memory that no input or other output shares", "given memory overlapping lse"});
  args_.lse = output_.lse_view();
  args_.workspace.data = arena + 4096;  // 256-byte aligned, inside out
  expect_rejected({"out: expected memory that no input or other output shares", "given memory overlapping workspace"});
  args_.out = output_.out_view();
  args_.lse.data = arena + 4096 + 256;  // on the workspace's partials
  expect_rejected({"lse: expected memory that no input or other output shares", "given memory overlapping workspace"});
}

TEST_F(Aliasing, WorkspaceSharingMemoryWithAnInput) {
  char* at = move_to_arena(args_.cache_seqlens, bytes_of(args_.cache_seqlens));
  args_.workspace.data = at - 256;  // the workspace's status slot and partials run over the lengths
  expect_rejected(
      {"workspace: expected memory that no input or output shares", "given memory overlapping cache_seqlens"});
}

}  // namespace
}  // namespace openmla::test
