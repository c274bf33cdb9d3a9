#pragma once
// The walk of a decode kernel's CTA over the pieces of its plan part (core/pieces.h), shared by every
// decode kernel: an offence of the whole plan is recorded once per CTA, naming no sequence; each
// piece's own offence is the kernel's to record (record_offence) as it writes that piece's rows.
// Thread 0 starts the CTA's word of the status record before its walk and makes every record.

#include <type_traits>

#include "../../core/pieces.h"
#include "../../core/status.h"
#include "params.h"
#include "ptx.cuh"
#include "ptx/barrier.cuh"

namespace openmla::cuda {

// Starts, one line per thread, the loads a CTA's walk makes: threads below kWalkLines the whole plan
// buffer when it is at most kWalkLines lines (else thread 0 its header, the part's fields and the
// line's total), the threads after them cache_seqlens when it is contiguous and as small (so all of it
// only in CTAs of 2 * kWalkLines threads). The walk's loads depend on each other (header, part, prefix
// sums, length); with the lines already on their way they need not wait for one L2 round trip each.
inline constexpr int64_t kWalkLines = 128;
inline constexpr int64_t kLineBytes = 128;

__device__ __forceinline__ void prefetch_walk(const DecodeParams& p, int part) {
  const schedule::View& v = p.plan;
  const auto* plan = reinterpret_cast<const char*>(v.header);
  const int64_t plan_lines = (schedule::layout(p.batch, p.num_parts).bytes + kLineBytes - 1) / kLineBytes;
  const int64_t seqlen_lines = p.seqlens_stride == 1 ? (p.batch * 4 + kLineBytes - 1) / kLineBytes : 0;
  const int64_t x = threadIdx.x;
  if (plan_lines <= kWalkLines) {
    if (x < plan_lines) {
      ptx::prefetch_l1(plan + x * kLineBytes);
    }
  } else if (x == 0) {
    ptx::prefetch_l1(v.header);
    ptx::prefetch_l1(v.parts + static_cast<int64_t>(part) * schedule::kPartFields);
    ptx::prefetch_l1(v.prefix + p.batch);
  }
  if (seqlen_lines <= kWalkLines && x >= kWalkLines && x < kWalkLines + seqlen_lines) {
    ptx::prefetch_l1(reinterpret_cast<const char*>(p.seqlens) + (x - kWalkLines) * kLineBytes);
  }
}

// The CTA's index in the grid (x fastest) and the grid's CTAs, from one volatile read of the special
// registers: the compiler cannot merge it with the kernel's own uses of blockIdx and keep those values
// live across the kernel (which pushed the FP8 asymmetric kernel to spill).
struct GridPlace {
  int64_t cta;
  int64_t ctas;
};
__device__ __forceinline__ GridPlace grid_place() {
  uint32_t x, y, z, nx, ny, nz;
  asm volatile(
      "mov.u32 %0, %%ctaid.x;\n"
      "mov.u32 %1, %%ctaid.y;\n"
      "mov.u32 %2, %%ctaid.z;\n"
      "mov.u32 %3, %%nctaid.x;\n"
      "mov.u32 %4, %%nctaid.y;\n"
      "mov.u32 %5, %%nctaid.z;\n"
      : "=r"(x), "=r"(y), "=r"(z), "=r"(nx), "=r"(ny), "=r"(nz));
  return GridPlace{x + static_cast<int64_t>(nx) * (y + static_cast<int64_t>(ny) * z),
                   static_cast<int64_t>(nx) * ny * nz};
}

// The CTA's word of the workspace's status record (core/status.h): one per CTA of the grid.
__device__ __forceinline__ int32_t* status_word(const DecodeParams& p) {
  return p.status + status::kRecordHeaderWords + grid_place().cta;
}

// Thread 0, before anything is recorded: the CTA's word says "ok" and CTA 0 writes the record's header.
// Every record of the CTA is thread 0's and comes later (record_offence), so program order keeps it
// after this store; no word is shared between CTAs, so nothing resets the record between decodes.
__device__ __forceinline__ void start_status(const DecodeParams& p, int32_t* word) {
  *word = status::kOkWord;
  const GridPlace place = grid_place();
  if (place.cta == 0) {
    p.status[0] = status::kRecordMagic;
    p.status[1] = static_cast<int32_t>(place.ctas);
  }
}

// Thread 0: keeps the first offence (the lowest encoded word, status.h) in the CTA's word.
__device__ __forceinline__ void record_offence(int32_t* word, int32_t offence) { atomicMin(word, offence); }

// Whether a piece's rows are NaN: its own offence (a length or plan field) or a page outside the cache
// (`bad_page`, set by its loads). Thread 0 records the offence in the CTA's word, word_of() (called only
// then, so a kernel may derive the word's address where it is needed).
template <typename WordOf>
__device__ __forceinline__ bool report_piece(const schedule::Piece& piece, int bad_page, WordOf&& word_of) {
  const bool bad = piece.status != status::kOk || bad_page != 0;
  if (bad && threadIdx.x == 0) {
    const int code = piece.status != status::kOk ? piece.status : status::kPageOutOfRange;
    record_offence(word_of(), status::encode(piece.seq, code));
  }
  return bad;
}

// Calls run(piece) for every piece of plan part `part`, in order.
template <typename Run>
__device__ __forceinline__ void for_each_piece(const DecodeParams& p, int part, Run&& run) {
  if (threadIdx.x == 0) {
    start_status(p, status_word(p));
  }
  const schedule::Walk walk = schedule::walk_part(p.plan, p.batch, p.num_parts, part);
  if (walk.status != status::kOk && threadIdx.x == 0) {
    record_offence(status_word(p), status::encode(status::kNoSequence, walk.status));
  }
  const schedule::Lengths lengths{
      .seqlens = p.seqlens, .stride = p.seqlens_stride, .page_size = p.page_size, .max_blocks = p.max_blocks};
  for (int seq = walk.first; seq <= walk.last; seq += walk.stride) {
    run(schedule::piece_of(p.plan, walk, seq, lengths));
  }
}

// The plan words and lengths a walk reads, copied into shared memory when the batch is at most
// kCopiedBatch (params.h): one load per thread, all issued together, instead of the walk's chain of
// dependent global loads (header, the part's fields, prefix sums, split offsets, the length).
struct WalkCopy {
  int64_t prefix[kCopiedBatch + 1];        // [b + 1] of the plan's prefix sums
  int32_t header[schedule::kHeaderWords];  // the plan's header
  int32_t part[schedule::kPartFields];     // the fields of the CTA's part
  int32_t split_offset[kCopiedBatch + 1];  // [b + 1]
  int32_t seqlens[kCopiedBatch];           // [b] cache_seqlens, contiguous
};

// Where a CTA keeps its walk in shared memory (for_each_piece_shared).
struct SharedWalk {
  schedule::Walk walk;
  schedule::Piece piece;  // the piece being computed
  int32_t* status;        // the CTA's word of the status record (status_word), loaded where a record is made
  WalkCopy copy;          // used when p.batch <= kCopiedBatch
};

// Fills `copy` for part `part` (p.batch <= kCopiedBatch), every thread of the CTA at most one word.
// Each index depends only on batch and num_parts, so no content of the plan steers a load.
__device__ __forceinline__ void copy_walk(const DecodeParams& p, int part, WalkCopy& copy) {
  const schedule::View& v = p.plan;
  const int64_t b = p.batch;
  constexpr int64_t kFixedWords = schedule::kHeaderWords + schedule::kPartFields;
  for (int64_t x = threadIdx.x; x < kFixedWords + 3 * b + 2; x += blockDim.x) {
    if (x < schedule::kHeaderWords) {
      copy.header[x] = v.header[x];
    } else if (x < kFixedWords) {
      const int64_t field = x - schedule::kHeaderWords;
      copy.part[field] = v.parts[static_cast<int64_t>(part) * schedule::kPartFields + field];
    } else if (x < kFixedWords + b + 1) {
      copy.prefix[x - kFixedWords] = v.prefix[x - kFixedWords];
    } else if (x < kFixedWords + 2 * b + 2) {
      copy.split_offset[x - kFixedWords - b - 1] = v.split_offset[x - kFixedWords - b - 1];
    } else {
      copy.seqlens[x - kFixedWords - 2 * b - 2] = p.seqlens[(x - kFixedWords - 2 * b - 2) * p.seqlens_stride];
    }
  }
}

// What thread 0 walks: the shared-memory copy when the batch is small (copy_walk), else the plan.
__device__ __forceinline__ bool walk_copied(const DecodeParams& p) { return p.batch <= kCopiedBatch; }

__device__ __forceinline__ schedule::View walk_view(const DecodeParams& p, const WalkCopy& copy) {
  return walk_copied(p) ? schedule::View{copy.header, copy.prefix, p.plan.parts, copy.split_offset} : p.plan;
}

__device__ __forceinline__ schedule::Lengths walk_lengths(const DecodeParams& p, const WalkCopy& copy) {
  return schedule::Lengths{.seqlens = walk_copied(p) ? copy.seqlens : p.seqlens,
                           .stride = walk_copied(p) ? 1 : p.seqlens_stride,
                           .page_size = p.page_size,
                           .max_blocks = p.max_blocks};
}

// A barrier of every thread of the CTA: __syncthreads (kBarrier 0), or the unaligned barrier kBarrier
// over blockDim.x threads for a kernel whose warp roles reach their CTA-wide barriers from different
// code (every thread of a CTA must execute the same __syncthreads, or bar.sync, instruction).
template <int kBarrier>
__device__ __forceinline__ void sync_cta() {
  if constexpr (kBarrier == 0) {
    __syncthreads();
  } else {
    ptx::barrier_sync(kBarrier, static_cast<int>(blockDim.x));
  }
}

// start_status for a kernel that walks with for_each_piece_shared: thread 0 also keeps the word's
// address in `shared` for its records. Called at the kernel's start, before warp roles split, so that
// no role's code carries it.
__device__ __forceinline__ void start_status_shared(const DecodeParams& p, SharedWalk& shared) {
  if (threadIdx.x == 0) {
    shared.status = status_word(p);
    start_status(p, shared.status);
  }
}

// Thread 0, as it hands out the piece of sequence seq: starts the loads of the walk's next step (for a
// walk from global memory) and of the next piece's first block-table entry, so that at the boundary
// they hit L1 instead of waiting behind the cache stream for a round trip each.
__device__ __forceinline__ void prefetch_next_step(const DecodeParams& p, const schedule::Walk& walk, int seq) {
  const int64_t next = static_cast<int64_t>(seq) + walk.stride;
  if (next > walk.last) {
    return;
  }
  ptx::prefetch_l1(p.block_table + next * p.bt_stride_b);
  if (!walk_copied(p)) {
    ptx::prefetch_l1(p.plan.prefix + next);
    ptx::prefetch_l1(p.plan.prefix + next + 1);
    ptx::prefetch_l1(p.plan.split_offset + next);
    ptx::prefetch_l1(p.plan.split_offset + next + 1);
    ptx::prefetch_l1(p.seqlens + next * p.seqlens_stride);
  }
}

// A guess at the part's first piece from its stored fields (`fields`: [kPartFields]) and its
// sequence's length alone, before the walk checks them: tiles [tile_begin, tile_end) of sequence seq,
// none when tile_end == tile_begin. seq lies in the batch and tile_end within the tiles of its length, so
// a kernel may load the guess's q rows and tiles while thread 0 walks; only the walk decides what is
// computed.
struct FirstGuess {
  int seq;
  int tile_begin;
  int tile_end;
};
__device__ __forceinline__ FirstGuess guess_first_piece(const DecodeParams& p, const int32_t* fields,
                                                        const WalkCopy& copy) {
  const schedule::Part part = schedule::load_part(fields, 0);
  if (part.first_seq < 0 || part.first_seq >= p.batch || part.first_seq > part.last_seq || part.first_tile_begin < 0) {
    return FirstGuess{0, 0, 0};
  }
  const int32_t s_k = walk_copied(p) ? copy.seqlens[part.first_seq] : p.seqlens[part.first_seq * p.seqlens_stride];
  const int64_t tiles = schedule::num_tiles(s_k);
  const int64_t end = part.first_seq == part.last_seq && part.last_tile_end < tiles ? part.last_tile_end : tiles;
  if (end <= part.first_tile_begin) {
    return FirstGuess{0, 0, 0};
  }
  return FirstGuess{part.first_seq, part.first_tile_begin, static_cast<int>(end)};
}

// for_each_piece_shared's default `warm`: nothing.
struct NoWarm {
  __device__ void operator()(const int32_t*) const {}
};

// The same walk with its state in shared memory instead of registers, for a kernel whose hot loop
// needs every register it has (the Hopper kernel): thread 0 walks the part and hands each piece to
// the CTA through `shared`; every thread copies the piece before `run`. Call it from every thread of the
// CTA; `run` must pass a barrier of the whole CTA before it returns, so that thread 0 writes the next
// piece only once every thread has its copy. A small batch's plan words are walked from shared memory
// (copy_walk), a larger one's from global memory after prefetch_walk. kWithWalker false: the caller's
// threads exclude thread 0 (a warp-specialized kernel's other role), so its walk is not compiled in.
// kBarrier: the CTA-wide barrier (sync_cta) of the walk and of `run`. The kernel calls
// start_status_shared first. Every thread calls warm(fields) with the part's stored fields (in the copy
// or the plan) while thread 0 walks: a kernel's other threads may start loads there (guess_first_piece).
template <bool kWithWalker = true, int kBarrier = 0, typename Run, typename Warm = NoWarm>
__device__ __forceinline__ void for_each_piece_shared(const DecodeParams& p, int part, SharedWalk& shared, Run&& run,
                                                      Warm&& warm = NoWarm{}) {
  if (walk_copied(p)) {
    copy_walk(p, part, shared.copy);
  } else {
    prefetch_walk(p, part);
  }
  sync_cta<kBarrier>();  // the copy is complete
  const auto part_fields = [&] {
    return walk_copied(p) ? shared.copy.part : p.plan.parts + static_cast<int64_t>(part) * schedule::kPartFields;
  };
  if constexpr (!std::is_same_v<std::decay_t<Warm>, NoWarm>) {
    warm(part_fields());
  }
  if (kWithWalker && threadIdx.x == 0) {
    const int32_t* fields = part_fields();
    shared.walk = schedule::walk_part(walk_view(p, shared.copy), p.batch, p.num_parts, part, fields);
    if (shared.walk.status != status::kOk) {
      record_offence(shared.status, status::encode(status::kNoSequence, shared.walk.status));
    }
  }
  sync_cta<kBarrier>();
  for (int seq = shared.walk.first; seq <= shared.walk.last; seq += shared.walk.stride) {
    if (kWithWalker && threadIdx.x == 0) {
      shared.piece = schedule::piece_of(walk_view(p, shared.copy), shared.walk, seq, walk_lengths(p, shared.copy));
      prefetch_next_step(p, shared.walk, seq);
    }
    sync_cta<kBarrier>();
    const schedule::Piece piece = shared.piece;
    run(piece);
  }
}

}  // namespace openmla::cuda
