#include "grid.h"

#include <sstream>

namespace openmla::test {

std::vector<ProblemSpec> design_grid(const std::function<bool(const ProblemSpec&)>& keep) {
  std::vector<ProblemSpec> specs;
  uint64_t seed = 0;
  for (int64_t b : {1, 2, 6, 64}) {
    for (int64_t s_q : {1, 2, 4}) {
      for (int64_t s_k : {20, 140, 4096}) {
        for (int64_t h_q : {1, 3, 9, 63, 64, 126, 128}) {
          for (int64_t h_kv : {1, 2, 3, 8}) {
            if (h_q % h_kv != 0) {
              continue;
            }
            for (bool varlen : {false, true}) {
              for (bool causal : {false, true}) {
                const ProblemSpec spec{.b = b,
                                       .s_q = s_q,
                                       .h_q = h_q,
                                       .h_kv = h_kv,
                                       .s_k = s_k,
                                       .varlen = varlen,
                                       .causal = causal,
                                       .seed = ++seed};
                if (keep(spec)) {
                  specs.push_back(spec);
                }
              }
            }
          }
        }
      }
    }
  }
  return specs;
}

std::string spec_name(const ProblemSpec& s) {
  std::ostringstream n;
  n << "b" << s.b << "_sq" << s.s_q << "_sk" << s.s_k << "_hq" << s.h_q << "_hkv" << s.h_kv
    << (s.varlen ? "_varlen" : "_fixed") << (s.causal ? "_causal" : "");
  return n.str();
}

}  // namespace openmla::test
