#pragma once
// What a case's time means (bytes, FLOPs, GB/s, TFLOPS, % of the measured ceilings) and how the
// results are written: a table on stdout, one JSON object per line in the --out file.

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "check.h"
#include "measure.h"
#include "roofline.h"
#include "write_cache.h"

namespace openmla::bench {

struct Metrics {
  // b·((s_q·h_q·d_qk + s_q·h_q·d_v)·elem_bytes + mean_s_k·h_kv·cache_token_bytes): the cache as stored
  double bytes = 0.0;
  double flops = 0.0;  // 2·b·s_q·h_q·mean_s_k·(d_qk + d_v)
  double gbps = 0.0;
  double tflops = 0.0;
  double pct_copy = 0.0;         // of the measured copy bandwidth
  double pct_gemm = 0.0;         // of the measured GEMM rate
  bool memory_bound = true;      // the bytes take longer than the FLOPs at the measured ceilings
  std::optional<Target> target;  // for the default cases
  double of_target = 0.0;        // achieved / target (>= 1: met): target µs over decode µs, or % over %
  double vs_peer = 0.0;          // estimated speed over the best peer: of_target * target ratio
};

Metrics metrics(const CaseResult& r, const Roofline& roof);

// An FP8 case against its twin, the same case with a plain cache (cases.h, plain_twin), measured in the
// same run: the same lengths, so the ratio of times is the ratio of tokens/s.
struct TwinComparison {
  std::string twin;              // the twin's case name
  double twin_us = 0.0;          // its median decode time
  double speed = 0.0;            // tokens/s over the twin's: twin_us / the case's decode µs
  std::optional<double> target;  // the speed a default FP8 case must reach (issue 13)
  bool met = false;              // speed >= target
};

// For an FP8 case whose twin is among `results`; nullopt for a plain case or a twin not measured.
std::optional<TwinComparison> compare_with_twin(const CaseResult& r, const std::vector<CaseResult>& results);

// One case that failed: its name and why.
struct CaseFailure {
  Case shape;
  std::string error;
};

void print_roofline(std::ostream& os, const Roofline& roof);
void print_spot_checks(std::ostream& os, const std::vector<SpotCheck>& checks);
void print_table(std::ostream& os, const std::vector<CaseResult>& results, const std::vector<CaseFailure>& failures,
                 const Roofline& roof);

std::string roofline_json(const Roofline& roof);
std::string spot_check_json(const SpotCheck& check);
std::string case_json(const CaseResult& r, const Roofline& roof, const std::optional<TwinComparison>& twin);
std::string failure_json(const CaseFailure& f);

// The cache-write measurements: GB/s over the median time and its share of the copy bandwidth.
double write_cache_gbps(const WriteCacheResult& r);
std::string write_cache_name(const WriteCacheCase& c);
void print_write_cache_table(std::ostream& os, const std::vector<WriteCacheResult>& results, const Roofline& roof);
std::string write_cache_json(const WriteCacheResult& r, const Roofline& roof);
std::string write_cache_failure_json(const WriteCacheCase& c, const std::string& error);

}  // namespace openmla::bench
