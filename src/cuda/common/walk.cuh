#pragma once
// The walk of a decode kernel's CTA over the pieces of its plan part (core/pieces.h), shared by every
// decode kernel: an offence of the whole plan is recorded once per CTA, naming no sequence; each
// piece's own offence is the kernel's to record as it writes that piece's rows.

#include "../../core/pieces.h"
#include "../../core/status.h"
#include "params.h"

namespace openmla::cuda {

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

}  // namespace openmla::cuda
