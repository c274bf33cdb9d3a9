// read_status on the two forms a status buffer takes (src/core/status.h): one word (write_cache's
// buffer, an empty step's workspace) or a decode's record of one word per kernel CTA, each rewritten
// by every decode so that nothing resets the workspace between decodes. Host buffers stand in for the
// device's: the record is read the same way from either.

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "core/workspace.h"
#include "openmla/openmla.h"

namespace openmla::test {
namespace {

DecodeStatus read_words(std::vector<int32_t> words, int64_t bytes = -1) {
  return read_status(Buffer{words.data(), bytes < 0 ? static_cast<int64_t>(words.size() * 4) : bytes});
}

std::vector<int32_t> record(const std::vector<int32_t>& cta_words) {
  std::vector<int32_t> words = {status::kRecordMagic, static_cast<int32_t>(cta_words.size())};
  words.insert(words.end(), cta_words.begin(), cta_words.end());
  return words;
}

TEST(StatusRecord, SingleWord) {
  EXPECT_EQ(read_words({status::kOkWord}).code, StatusCode::ok);
  const DecodeStatus offence = read_words({status::encode(17, status::kSlotOutOfRange)});
  EXPECT_EQ(offence.code, StatusCode::slot_out_of_range);
  EXPECT_EQ(offence.batch, 17);
}

TEST(StatusRecord, LeastWordOfTheCtasIsTheFirstOffence) {
  const int32_t ok = status::kOkWord;
  const DecodeStatus status = read_words(record({ok, status::encode(9, status::kPageOutOfRange), ok,
                                                 status::encode(4, status::kTooFewPages), ok}));
  EXPECT_EQ(status.code, StatusCode::too_few_pages);
  EXPECT_EQ(status.batch, 4);
  const DecodeStatus whole_plan =
      read_words(record({status::encode(2, status::kStalePlan), status::encode(status::kNoSequence, status::kBadPlan)}));
  EXPECT_EQ(whole_plan.code, StatusCode::bad_plan);
  EXPECT_EQ(whole_plan.batch, -1);
}

TEST(StatusRecord, CleanRecordsAreOk) {
  EXPECT_EQ(read_words(record({status::kOkWord, status::kOkWord})).code, StatusCode::ok);
  EXPECT_EQ(read_words(record({})).code, StatusCode::ok);
}

TEST(StatusRecord, WordsBeyondTheRecordAreNotRead) {
  std::vector<int32_t> words = record({status::kOkWord, status::kOkWord});
  words.push_back(status::encode(0, status::kNegativeSeqlen));  // a stale word of a larger, earlier grid
  EXPECT_EQ(read_words(words).code, StatusCode::ok);
}

TEST(StatusRecord, RecordLargerThanTheBufferThrows) {
  std::vector<int32_t> words = record({status::kOkWord, status::kOkWord, status::kOkWord});
  try {
    read_words(words, 4 * 4);
    ADD_FAILURE() << "read_status read past the buffer";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("workspace"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("0 to 2 words"), std::string::npos) << e.what();
  }
  EXPECT_THROW(read_words({status::kRecordMagic}), Error);
  words[1] = -3;
  EXPECT_THROW(read_words(words), Error);
}

TEST(StatusRecord, WorkspaceHoldsAWordPerCtaOfEveryGrid) {
  // The grids are (m_tiles, num_parts, h_kv), m_tiles at most ceil(s_q * h_q / h_kv / 16).
  for (const int64_t h_q : {1, 8, 16, 100, 128}) {
    for (const int64_t s_q : {1, 3, 16}) {
      for (int64_t h_kv = 1; h_kv <= h_q; ++h_kv) {
        if (h_q % h_kv != 0) {
          continue;
        }
        const int64_t rows = s_q * h_q / h_kv;
        const int64_t ctas_per_part = (rows + workspace::kMinTileRows - 1) / workspace::kMinTileRows * h_kv;
        const int64_t num_parts = 7;
        EXPECT_LE(status::kRecordHeaderWords + num_parts * ctas_per_part, workspace::record_words(num_parts, s_q, h_q))
            << "s_q " << s_q << " h_q " << h_q << " h_kv " << h_kv;
        const workspace::Layout layout = workspace::layout(num_parts, 3 + num_parts - 1, s_q, h_q, 512);
        EXPECT_GE(layout.lse_offset, workspace::record_words(num_parts, s_q, h_q) * 4);
      }
    }
  }
}

}  // namespace
}  // namespace openmla::test
