#include "compare.h"

#include <cmath>
#include <sstream>

#include "half_bits.h"

namespace openmla::test {

namespace {

constexpr size_t kMaxReported = 8;

void report(Comparison& c, const std::string& what) {
  if (c.first.size() < kMaxReported) {
    c.first.push_back(what);
  }
}

}  // namespace

bool Comparison::ok(const Tolerance& tol) const {
  return out_mismatches == 0 && lse_mismatches == 0 && nans == 0 && rel_frobenius <= tol.frobenius;
}

std::string Comparison::summary() const {
  std::ostringstream s;
  s << "out mismatches " << out_mismatches << ", lse mismatches " << lse_mismatches << ", NaNs " << nans
    << ", max |out - ref| " << max_out_error << ", relative Frobenius error " << rel_frobenius;
  for (const std::string& f : first) {
    s << "\n  " << f;
  }
  return s.str();
}

Comparison compare(const Reference& ref, const TensorView& out, const TensorView& lse, const Tolerance& tol) {
  const int64_t b = out.sizes[0];
  const int64_t s_q = out.sizes[1];
  const int64_t h_q = out.sizes[2];
  const int64_t d_v = out.sizes[3];
  const auto* o = static_cast<const uint16_t*>(out.data);  // [b, s_q, h_q, d_v] strided
  const auto* l = static_cast<const float*>(lse.data);     // [b, h_q, s_q] strided
  Comparison c;
  double err2 = 0.0;
  double ref2 = 0.0;
  for (int64_t n = 0; n < b; ++n) {
    for (int64_t h = 0; h < h_q; ++h) {
      for (int64_t i = 0; i < s_q; ++i) {
        const double want = ref.lse[(n * h_q + h) * s_q + i];
        const double got = l[n * lse.strides[0] + h * lse.strides[1] + i * lse.strides[2]];
        const double bound = tol.lse_abs + tol.lse_rel * std::fabs(want);
        // +inf must match exactly; comparisons with NaN are false, so NaN is tested on its own.
        const bool bad =
            std::isnan(got) || (std::isinf(want) || std::isinf(got) ? got != want : std::fabs(got - want) > bound);
        c.nans += std::isnan(got);
        if (bad) {
          ++c.lse_mismatches;
          std::ostringstream s;
          s << "lse[" << n << ", " << h << ", " << i << "] = " << got << ", reference " << want;
          report(c, s.str());
        }
      }
    }
  }
  for (int64_t n = 0; n < b; ++n) {
    for (int64_t i = 0; i < s_q; ++i) {
      for (int64_t h = 0; h < h_q; ++h) {
        // A row that sees no key must be exactly 0 (docs/semantics.md), not merely small.
        const bool empty = std::isinf(ref.lse[(n * h_q + h) * s_q + i]);
        for (int64_t d = 0; d < d_v; ++d) {
          const double want = ref.out[((n * s_q + i) * h_q + h) * d_v + d];
          const int64_t at = n * out.strides[0] + i * out.strides[1] + h * out.strides[2] + d * out.strides[3];
          const double got = half_to_double(o[at], out.dtype);
          const double err = std::fabs(got - want);
          c.nans += std::isnan(got);
          const double bound = tol.out_abs + tol.out_rel * std::fabs(want);
          const bool bad = std::isnan(got) || (empty ? got != 0.0 : err > bound);
          if (!std::isnan(got)) {
            c.max_out_error = std::max(c.max_out_error, err);
            err2 += err * err;
          }
          ref2 += want * want;
          if (bad) {
            ++c.out_mismatches;
            std::ostringstream s;
            s << "out[" << n << ", " << i << ", " << h << ", " << d << "] = " << got << ", reference " << want;
            report(c, s.str());
          }
        }
      }
    }
  }
  c.rel_frobenius = ref2 > 0.0 ? std::sqrt(err2 / ref2) : (err2 > 0.0 ? INFINITY : 0.0);
  return c;
}

}  // namespace openmla::test
