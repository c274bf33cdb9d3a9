#pragma once
// The device status word: the first offence found in values that live on the device (cache_seqlens,
// block_table, the plan buffer). A decode keeps one word per kernel CTA in its workspace (the record
// below); write_cache keeps its out-of-range slots in a word of its own, with the token index as
// `batch`. Encoding and decoding live here together; the public StatusCode (openmla/decode.h) has the
// same values.

#include <cstdint>

#include "host_device.h"

namespace openmla::status {

enum Code : int32_t {
  kOk = 0,
  kNegativeSeqlen = 1,  // cache_seqlens[batch] < 0
  kTooFewPages = 2,     // cache_seqlens[batch] needs more pages than block_table holds
  kPageOutOfRange = 3,  // a used block_table entry outside [0, num_blocks)
  kStalePlan = 4,       // the plan was made for a length of sequence `batch` with another tile count
  kBadPlan = 5,         // the plan buffer is not what openmla::plan wrote for this decode
  kSlotOutOfRange = 6,  // write_cache: slot_mapping[batch] >= num_blocks * page_size (batch: the token)
};

// The `batch` of an offence of the whole plan (a wrong header or part), which names no sequence.
inline constexpr int64_t kNoSequence = -1;

// word = batch * kCodeRadix + code, batch >= kNoSequence: an offence of the whole plan encodes below
// every other. Room for codes added later without changing the encoding.
inline constexpr int32_t kCodeRadix = 8;

// A byte pattern (every byte kOkByte), so a memset can reset the word; larger than every offence.
inline constexpr int32_t kOkWord = 0x7f7f7f7f;
inline constexpr int kOkByte = 0x7f;

// The largest batch (or write_cache token count) whose offences still encode below kOkWord.
inline constexpr int64_t kMaxBatch = int64_t{1} << 27;
static_assert(kMaxBatch * kCodeRadix <= kOkWord);

// atomicMin over encoded words keeps the lowest sequence index, so the record is deterministic.
OPENMLA_HD int32_t encode(int64_t batch, int32_t code) { return static_cast<int32_t>(batch * kCodeRadix + code); }

struct Decoded {
  int32_t code;   // kOk when the word records no offence
  int64_t batch;  // -1 when ok; kNoSequence (-1) for an offence of the whole plan
};

OPENMLA_HD Decoded decode(int32_t word) {
  if (word == kOkWord) {
    return Decoded{kOk, -1};
  }
  // Floor division: the words of kNoSequence are negative.
  const int32_t batch = word >= 0 ? word / kCodeRadix : -((-word + kCodeRadix - 1) / kCodeRadix);
  return Decoded{word - batch * kCodeRadix, batch};
}

// A decode's record at the start of its workspace, rewritten whole by every decode so that nothing has
// to reset it between decodes (no memset on the hot path):
//   int32 kRecordMagic
//   int32 n                  the CTAs of the last decode (0: an empty step)
//   int32 word[n]            CTA c's first offence, kOkWord if none: each CTA sets its own word at its
//                            start and only that CTA updates it
// The decode's status is the least word (the lowest sequence, as one shared word would keep). A word 0
// other than kRecordMagic is a single status word (write_cache's buffer, or kOkWord for an empty step).
// kRecordMagic lies below every encoded offence (>= encode(kNoSequence, 0)) and is not kOkWord.
inline constexpr int32_t kRecordMagic = INT32_MIN;
inline constexpr int64_t kRecordHeaderWords = 2;

// The first offence among a record's words (kOkWord when none).
OPENMLA_HD int32_t first_offence(const int32_t* words, int64_t n) {
  int32_t first = kOkWord;
  for (int64_t i = 0; i < n; ++i) {
    first = words[i] < first ? words[i] : first;
  }
  return first;
}

}  // namespace openmla::status
