#pragma once
// Compile-time constants of the Hopper (sm_90a) decode kernel.

#include "../common/params.h"
#include "openmla/cache_format.h"

namespace openmla::sm90 {

inline constexpr int kWarpgroupThreads = 128;
inline constexpr int kWarpgroups = 2;  // two consumer warpgroups, no producer warpgroup
inline constexpr int kThreads = kWarpgroups * kWarpgroupThreads;
inline constexpr int kWarps = kThreads / 32;

inline constexpr int kBlockM = 64;  // query rows per CTA: wgmma's M
inline constexpr int kBlockN = 64;  // keys per tile = tokens per TMA box
inline constexpr int kStages = 2;   // cache tiles in flight

// Operands live in shared memory as chunks of [64 rows][64 elements]: one 128-byte row per row,
// 128-byte swizzle, 8 KB per chunk. A q or cache row of kDQK = 576 elements is 9 chunks; the output
// (kDV = 512, the first 8 chunks of a cache row) is split by columns, 4 chunks per warpgroup.
inline constexpr int kChunkCols = 64;
inline constexpr int kRowBytes = kChunkCols * 2;                             // 128: one swizzled row
inline constexpr int kChunkBytes = kBlockN * kRowBytes;                      // 8192
inline constexpr int kChunks = cuda::kDQK / kChunkCols;                      // 9
inline constexpr int kVChunks = cuda::kDV / kChunkCols;                      // 8
inline constexpr int kColsPerWarpgroup = cuda::kDV / kWarpgroups;            // 256 output columns
inline constexpr int kVChunksPerWarpgroup = kColsPerWarpgroup / kChunkCols;  // 4
inline constexpr int kTileBytes = kChunks * kChunkBytes;  // 73,728 bytes of one cache tile (one TMA box)

// The seesaw schedule refills a tile in two halves: the low half (chunks 0-3, warpgroup 0's value
// columns) and the high half (chunks 4-8: warpgroup 1's value columns and the RoPE chunk), each as
// soon as its last reader is done; every chunk has its own box and barrier.
inline constexpr int kLowChunks = kVChunksPerWarpgroup;   // 4
inline constexpr int kHighChunks = kChunks - kLowChunks;  // 5

// The seesaw schedule keeps a row's exponent base until a tile's max exceeds it by more than this
// (log2 units): probabilities stay below 2^8, exact in bf16 and fp16 alike, and the row sum uses the
// same base, so out and lse are those of the exact running max up to rounding. Most tiles then need
// no rescale of the output accumulator at all.
inline constexpr float kRescaleThreshold = 8.f;

// What a piece costs this kernel besides its tiles, in tiles, as a plan made for it charges
// (core/schedule.h, core/line_choice.h), by query rows per KV head. A piece's start and end (its q,
// its first tile, its rows) cost about four tiles of 16 rows on the H200 (docs/hopper-kernel.md,
// "Where a decode's pieces lose time"); from 64 rows on 6 to 8 measured faster (more rows a split to
// write and combine, likely). An FP8 decode of at most kFp8Rows rows (the narrow schedule on raw
// tiles, each about half a 16-bit tile's time) measured fastest at 6 (docs/fp8.md); plan_charge,
// below kFp8Rows.
inline constexpr int64_t kPlanChargeFewRows = 4;     // up to kPlanFewRows rows
inline constexpr int64_t kPlanChargeManyRows = 8;    // more
inline constexpr int64_t kPlanChargeFp8FewRows = 6;  // an FP8 cache, up to kFp8Rows rows
inline constexpr int64_t kPlanFewRows = 32;

// Arrivals that release a stage: one lane of each consumer warp, after its wgmma reading the stage retired.
inline constexpr int kStageReaders = kWarps;

// Shared memory per block that a Hopper SM offers (opt-in): 227 KB.
inline constexpr int kMaxSharedBytes = 232448;

// The consumer schedule of the two warpgroups (docs/hopper-kernel.md); OPENMLA_SM90_SCHEDULE picks
// one per process (sm90/launch.h: configured_schedule).
enum class Schedule {
  seesaw,      // tiles in pairs, each warpgroup computes one tile's scores
  asymmetric,  // warpgroup 0 computes every tile's scores, warpgroup 1 only its half of P V (the default)
  narrow,      // up to kNarrowMaxRows rows: products transposed, the query rows as wgmma's N; the
               // warpgroups take alternate tiles
};

// The most packed query rows per KV head (s_q * h_q / h_kv) the narrow schedule takes: wgmma N = 16 or 32.
inline constexpr int kNarrowMaxRows = 32;

// The narrow schedule on an FP8 cache (sm90/fp8_fragments.cuh): at most 16 packed rows per KV head
// (wgmma N = 16), tiles of 64 tokens of at most 656 bytes (the fp8_656 token), four in flight.
inline constexpr int kFp8Rows = 16;
inline constexpr int kFp8Stages = 4;
inline constexpr int kFp8MaxTokenBytes = 656;

// The charge of a plan for `rows` query rows per KV head on a cache of `format` (kPlanCharge*, above).
constexpr int64_t plan_charge(int64_t rows, CacheFormat format) {
  if (format != CacheFormat::plain && rows <= kFp8Rows) {
    return kPlanChargeFp8FewRows;
  }
  return rows <= kPlanFewRows ? kPlanChargeFewRows : kPlanChargeManyRows;
}

// The asymmetric schedule on an FP8 cache (more than kFp8Rows rows): a third warpgroup, the converter,
// loads each tile's raw bytes with TMA into its stage and converts them in place into the 16-bit
// chunks the two consumer warpgroups read (sm90/fp8_convert.cuh). At launch each of the 384 threads
// holds kLaunchRegisters (65,536 / 384, rounded down to 8); the register budgets (setmaxnreg) then
// move the converter's spare registers to the consumers, whose accumulators need them, within the
// CTA's total: 2 x 128 x 216 + 128 x 72 = 384 x 168, or 224 and 56 where the consumers also hold the
// producer (sm90/asymmetric.cuh kConsumersIssue), indexed by that.
inline constexpr int kConverterThreads = kWarpgroupThreads;
inline constexpr int kConvertSteps = 3;                         // a tile is converted in 3 steps of 3 chunks
inline constexpr int kChunksPerStep = kChunks / kConvertSteps;  // (and, per tensor, per TMA box and barrier)
// The raw tile in pieces of 64 tokens (sm90/fp8_convert.cuh RawTile, sm90/launch.cu make_fp8_chunk_map):
// bytes of each token per piece. Per tensor a chunk's e4m3 values, one TMA box per step; 656-byte
// tokens 16 bytes (656 = 41 x 16: pieces of 1,024 bytes, which the five loads of a tile fill whole).
// A 656-byte tile's e4m3 values come in three loads, chunks 0-2, 3-5 and 6-7, one a conversion step, each
// completing a barrier of its own, so that a step's conversion starts before the later loads land.
inline constexpr int kLastValueChunks656 = kVChunks - (kConvertSteps - 1) * kChunksPerStep;  // 2
inline constexpr int kPerTensorPieceBytes = kChunkCols;
inline constexpr int kToken656PieceBytes = 16;
inline constexpr int kWideFp8Threads = kThreads + kConverterThreads;      // 384
inline constexpr int kLaunchRegisters = 65536 / kWideFp8Threads / 8 * 8;  // 168
inline constexpr int kConsumerRegisters[2] = {216, 224};
inline constexpr int kConverterRegisters[2] = {72, 56};
static_assert(kThreads * kConsumerRegisters[0] + kConverterThreads * kConverterRegisters[0] <=
                      kWideFp8Threads * kLaunchRegisters &&
                  kThreads * kConsumerRegisters[1] + kConverterThreads * kConverterRegisters[1] <=
                      kWideFp8Threads * kLaunchRegisters,
              "the register budgets exceed what the CTA holds at launch");

// The transposed schedule on an FP8 cache (more than kFp8Rows rows; sm90/transposed.cuh): both products
// transposed, as the narrow schedule's, with the 64 rows of an m-tile as wgmma's N; tiles of 64 raw
// tokens, three in flight (q's 72 KB, two P buffers and three stages of up to 656-byte tokens fill the
// shared memory; a fourth does not fit).
inline constexpr int kTransposedStages = 3;

// The consumer schedule of an FP8 decode of more than kFp8Rows rows per KV head; OPENMLA_SM90_FP8_WIDE
// picks one per process (sm90/launch.h: configured_fp8_wide).
enum class Fp8Wide {
  converter,   // the asymmetric schedule with a converter warpgroup (sm90/asymmetric.cuh; the default)
  transposed,  // the transposed schedule: no 16-bit copy of a tile (sm90/transposed.cuh)
};

// Named barriers (bar.sync / bar.arrive); 0 is __syncthreads. One kernel uses the ids of its schedule.
enum NamedBarrier : int {
  // asymmetric
  kPFull = 1,       // warpgroup 0 wrote P and the row factors of a tile (arrive) -> warpgroup 1 (sync)
  kPFree = 2,       // warpgroup 1's wgmma reading P retired (arrive) -> warpgroup 0 may write P (sync)
  kScoreGroup = 3,  // warpgroup 0 alone, around zeroing a tail tile's rows (sm90/asymmetric.cuh zero_tail)
  // seesaw, once per pair of tiles (a, b), in this order
  kMaxA = 4,  // warpgroup 0 published the rows' base after tile a (arrive) -> warpgroup 1 (sync)
  kMaxB = 5,  // warpgroup 1 published the base after tile b (arrive) -> warpgroup 0 (sync)
  kPa = 6,    // warpgroup 0 stored P_a, rescaled to b's base (arrive) -> warpgroup 1 (sync)
  kPb = 7,    // warpgroup 1 stored P_b (arrive) -> warpgroup 0 (sync)
  // One warpgroup alone: its warps' wgmma retired (before a refill; warpgroup 0 also before storing
  // P_a over chunk 8 and zeroing a tail tile's rows), or its zeroed tail rows stored (before its
  // product reads them). The narrow schedule: the warpgroup's tile max is in shared memory, its P is
  // stored, its tile's products retired.
  kLocal0 = 8,  // warpgroup 0
  kLocal1 = 9,  // warpgroup 1
  // asymmetric on an FP8 cache: the converter warpgroup alone, between a step's reads of raw bytes and
  // its writes of 16-bit chunks over them (sm90/fp8_convert.cuh)
  kConvert = 10,
  // asymmetric on an FP8 cache: every thread of the CTA (cuda::sync_cta), where the consumers and the
  // converter, compiled apart, stand for __syncthreads
  kCta = 11,
  // transposed: warpgroup w stored P of its tile with the rows' bases and factors after it (arrive) ->
  // the other warpgroup (sync, before its product of that tile)
  kStoredP0 = 12,  // warpgroup 0's tiles
  kStoredP1 = 13,  // warpgroup 1's
  // narrow, once per piece: the score product of the piece's first tile retired in its warpgroup
  // (arrive) -> the other warpgroup (sync, before its first tile), so that the two run apart
  kStagger = 14,
};

}  // namespace openmla::sm90
