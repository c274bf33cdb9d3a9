#pragma once
// The walk of a decode kernel's CTA over the pieces of its plan part (core/pieces.h), shared by every
// decode kernel: an offence of the whole plan is recorded once per CTA, naming no sequence; each
// piece's own offence is the kernel's to record as it writes that piece's rows.

#include "../../core/pieces.h"
#include "../../core/status.h"
#include "params.h"
#include "ptx.cuh"

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

// Calls run(piece) for every piece of plan part `part`, in order.
template <typename Run>
__device__ __forceinline__ void for_each_piece(const DecodeParams& p, int part, Run&& run) {
  const schedule::Walk walk = schedule::walk_part(p.plan, p.batch, p.num_parts, part);
  if (walk.status != status::kOk && threadIdx.x == 0) {
    atomicMin(p.status, status::encode(status::kNoSequence, walk.status));
  }
  const schedule::Lengths lengths{
      .seqlens = p.seqlens, .stride = p.seqlens_stride, .page_size = p.page_size, .max_blocks = p.max_blocks};
  for (int seq = walk.first; seq <= walk.last; seq += walk.stride) {
    run(schedule::piece_of(p.plan, walk, seq, lengths));
  }
}

// Where a CTA keeps its walk in shared memory (for_each_piece_shared).
struct SharedWalk {
  schedule::Walk walk;
  schedule::Piece piece;  // the piece being computed
};

// The same walk with its state in shared memory instead of registers, for a kernel whose hot loop
// needs every register it has (the Hopper kernel): thread 0 walks the part and hands each piece to
// the CTA through `shared`; every thread copies the piece before `run`. Call it from every thread of the
// CTA; `run` must pass a barrier of the whole CTA before it returns, so that thread 0 writes the next
// piece only once every thread has its copy.
template <typename Run>
__device__ __forceinline__ void for_each_piece_shared(const DecodeParams& p, int part, SharedWalk& shared, Run&& run) {
  prefetch_walk(p, part);
  if (threadIdx.x == 0) {
    shared.walk = schedule::walk_part(p.plan, p.batch, p.num_parts, part);
    if (shared.walk.status != status::kOk) {
      atomicMin(p.status, status::encode(status::kNoSequence, shared.walk.status));
    }
  }
  __syncthreads();
  for (int seq = shared.walk.first; seq <= shared.walk.last; seq += shared.walk.stride) {
    if (threadIdx.x == 0) {
      const schedule::Lengths lengths{
          .seqlens = p.seqlens, .stride = p.seqlens_stride, .page_size = p.page_size, .max_blocks = p.max_blocks};
      shared.piece = schedule::piece_of(p.plan, shared.walk, seq, lengths);
    }
    __syncthreads();
    const schedule::Piece piece = shared.piece;
    run(piece);
  }
}

}  // namespace openmla::cuda
