#pragma once
// The device status word: the first offence a decode found in values that live on the device
// (cache_seqlens, block_table), kept in the workspace's first slot. Encoding and decoding live here
// together; the public StatusCode (openmla/decode.h) has the same values.

#include <cstdint>

#include "host_device.h"

namespace openmla::status {

enum Code : int32_t {
  kOk = 0,
  kNegativeSeqlen = 1,   // cache_seqlens[batch] < 0
  kTooFewPages = 2,      // cache_seqlens[batch] needs more pages than block_table holds
  kPageOutOfRange = 3,   // a used block_table entry outside [0, num_blocks)
};

// word = batch * kCodeRadix + code. Room for codes added later without changing the encoding.
inline constexpr int32_t kCodeRadix = 8;

// A byte pattern (every byte kOkByte), so a memset can reset the word; larger than every offence.
inline constexpr int32_t kOkWord = 0x7f7f7f7f;
inline constexpr int kOkByte = 0x7f;

// The largest batch whose offences still encode below kOkWord.
inline constexpr int64_t kMaxBatch = int64_t{1} << 27;
static_assert(kMaxBatch * kCodeRadix <= kOkWord);

// atomicMin over encoded words keeps the lowest sequence index, so the record is deterministic.
OPENMLA_HD int32_t encode(int64_t batch, int32_t code) { return static_cast<int32_t>(batch * kCodeRadix + code); }

struct Decoded {
  int32_t code;   // kOk when the word records no offence
  int64_t batch;  // -1 when ok
};

OPENMLA_HD Decoded decode(int32_t word) {
  if (word == kOkWord) {
    return Decoded{kOk, -1};
  }
  return Decoded{word % kCodeRadix, word / kCodeRadix};
}

}  // namespace openmla::status
