#include "cases.h"

namespace openmla::bench {

namespace {

struct Reference {
  Case shape;
  double flashmla_us;  // H100 80GB HBM3, CUDA-graph timed (docs/design.md, FlashMLA reference times)
};

Case make(int64_t b, int64_t s_q, int64_t h_q, int64_t s_k, bool varlen, bool causal) {
  Case c;
  c.b = b;
  c.s_q = s_q;
  c.h_q = h_q;
  c.s_k = s_k;
  c.varlen = varlen;
  c.causal = causal;
  return c;
}

const std::vector<Reference>& references() {
  static const std::vector<Reference> table = {
      {make(128, 1, 16, 1024, true, false), 66.8},
      {make(128, 1, 16, 4096, true, false), 220.0},
      {make(128, 1, 16, 16384, true, false), 825.0},
      {make(128, 1, 32, 4096, true, false), 233.0},
      {make(128, 1, 128, 4096, true, false), 291.0},
      {make(128, 1, 128, 16384, true, false), 1027.0},
      {make(128, 2, 128, 8192, true, true), 912.0},
      {make(128, 4, 16, 4096, true, true), 250.0},
      {make(32, 1, 16, 1024, false, false), 23.0},
      {make(32, 1, 128, 1024, false, false), 37.7},
  };
  return table;
}

bool same(const Case& a, const Case& b) {
  return a.b == b.b && a.s_q == b.s_q && a.h_q == b.h_q && a.h_kv == b.h_kv && a.s_k == b.s_k &&
         a.varlen == b.varlen && a.causal == b.causal && a.page_size == b.page_size &&
         a.dtype == b.dtype && a.d_qk == b.d_qk && a.d_v == b.d_v;
}

}  // namespace

std::string case_name(const Case& c) {
  const Case defaults;
  std::string name = "b=" + std::to_string(c.b) + " s_q=" + std::to_string(c.s_q) +
                     " h_q=" + std::to_string(c.h_q);
  if (c.h_kv != defaults.h_kv) {
    name += " h_kv=" + std::to_string(c.h_kv);
  }
  name += " s_k=" + std::to_string(c.s_k) + (c.varlen ? " varlen" : " fixed");
  if (c.causal) {
    name += " causal";
  }
  if (c.page_size != defaults.page_size) {
    name += " page=" + std::to_string(c.page_size);
  }
  if (c.dtype != defaults.dtype) {
    name += std::string(" ") + dtype_name(c.dtype);
  }
  return name;
}

std::vector<Case> default_cases() {
  std::vector<Case> cases;
  for (const Reference& r : references()) {
    cases.push_back(r.shape);
  }
  return cases;
}

std::optional<double> flashmla_h100_us(const Case& c) {
  for (const Reference& r : references()) {
    if (same(r.shape, c)) {
      return r.flashmla_us;
    }
  }
  return std::nullopt;
}

}  // namespace openmla::bench
