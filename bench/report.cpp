#include "report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <vector>

#include "openmla/version.h"

namespace openmla::bench {

namespace {

std::string format(const char* fmt, double value) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), fmt, value);
  return buf;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      char escape[8];
      std::snprintf(escape, sizeof(escape), "\\u%04x", static_cast<unsigned>(ch));
      out += escape;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

// Non-finite numbers are not JSON: they become null.
std::string json_number(double x) { return std::isfinite(x) ? format("%.6g", x) : "null"; }

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

// "<= 14.7 us", ">= 84% copy", ">= 72% gemm".
std::string target_string(const Target& t) {
  switch (t.kind) {
    case TargetKind::max_us:
      return "<= " + format("%.1f", t.value) + " us";
    case TargetKind::min_pct_copy:
      return ">= " + format("%.0f", t.value) + "% copy";
    case TargetKind::min_pct_gemm:
      return ">= " + format("%.0f", t.value) + "% gemm";
  }
  return "";
}

void case_fields(std::ostringstream& os, const Case& c) {
  os << "\"name\":" << json_string(case_name(c)) << ",\"b\":" << c.b << ",\"s_q\":" << c.s_q << ",\"h_q\":" << c.h_q
     << ",\"h_kv\":" << c.h_kv << ",\"s_k\":" << c.s_k << ",\"varlen\":" << (c.varlen ? "true" : "false")
     << ",\"causal\":" << (c.causal ? "true" : "false") << ",\"page_size\":" << c.page_size
     << ",\"dtype\":" << json_string(dtype_name(c.dtype)) << ",\"d_qk\":" << c.d_qk << ",\"d_v\":" << c.d_v
     << ",\"cache_format\":" << json_string(cache_format_name(c.format))
     << ",\"cache_token_bytes\":" << cache_token_bytes(c) << ",\"kernel\":" << json_string(kernel_name(c.kernel));
}

}  // namespace

Metrics metrics(const CaseResult& r, const Roofline& roof) {
  const Case& c = r.shape;
  const double e = static_cast<double>(dtype_size(c.dtype));
  const double b = static_cast<double>(c.b);
  const double rows = static_cast<double>(c.s_q * c.h_q);
  Metrics m;
  m.bytes = b * (e * rows * static_cast<double>(c.d_qk + c.d_v) +
                 r.mean_s_k * static_cast<double>(c.h_kv * cache_token_bytes(c)));
  m.flops = 2.0 * b * rows * r.mean_s_k * static_cast<double>(c.d_qk + c.d_v);
  m.gbps = m.bytes / (r.decode.median_us * 1e3);
  m.tflops = m.flops / (r.decode.median_us * 1e6);
  m.pct_copy = 100.0 * m.gbps / roof.copy_gbps;
  m.pct_gemm = 100.0 * m.tflops / roof.gemm_tflops;
  m.memory_bound = m.bytes / roof.copy_gbps >= 1e-3 * m.flops / roof.gemm_tflops;  // both in ns
  m.target = target_of(c);
  if (m.target) {
    switch (m.target->kind) {
      case TargetKind::max_us:
        m.of_target = m.target->value / r.decode.median_us;
        break;
      case TargetKind::min_pct_copy:
        m.of_target = m.pct_copy / m.target->value;
        break;
      case TargetKind::min_pct_gemm:
        m.of_target = m.pct_gemm / m.target->value;
        break;
    }
    m.vs_peer = m.of_target * m.target->ratio;
  }
  return m;
}

std::optional<TwinComparison> compare_with_twin(const CaseResult& r, const std::vector<CaseResult>& results) {
  if (r.shape.format == CacheFormat::plain) {
    return std::nullopt;
  }
  const std::string twin = case_name(plain_twin(r.shape));
  for (const CaseResult& t : results) {
    if (case_name(t.shape) == twin) {
      const std::optional<double> target = fp8_target_of(r.shape);
      const double speed = t.decode.median_us / r.decode.median_us;
      const TwinComparison cmp{.twin = twin,
                               .twin_us = t.decode.median_us,
                               .speed = speed,
                               .target = target,
                               .met = target && speed >= *target};
      return cmp;
    }
  }
  return std::nullopt;
}

void print_roofline(std::ostream& os, const Roofline& roof) {
  os << "device " << roof.ordinal << ": " << roof.device << " (cc " << roof.cc_major << "." << roof.cc_minor << ", "
     << roof.sm_count << " SMs, L2 " << roof.l2_bytes / (1 << 20) << " MiB, " << roof.memory_bytes / (1 << 30)
     << " GiB), driver " << roof.driver_version << ", runtime " << roof.runtime_version << ", openmla "
     << OPENMLA_VERSION << "\n"
     << "roofline: copy " << format("%.0f", roof.copy_gbps) << " GB/s (read + write, " << roof.copy_bytes / (1 << 20)
     << " MiB), cuBLAS bf16 GEMM " << format("%.0f", roof.gemm_tflops) << " TFLOPS (" << roof.gemm_n
     << "^3, fp32 accumulate)\n";
}

void print_spot_checks(std::ostream& os, const std::vector<SpotCheck>& checks) {
  for (const SpotCheck& s : checks) {
    if (!s.error.empty()) {
      os << "spot check vs CPU backend, " << s.name << ": FAIL: " << s.error << "\n";
      continue;
    }
    os << "spot check vs CPU backend, " << s.name << ": " << (s.passed ? "pass" : "FAIL") << " (rel. Frobenius "
       << format("%.2e", s.rel_frobenius) << ", max out error " << format("%.2f", s.max_excess) << " and lse error "
       << format("%.2f", s.max_lse_excess) << " of the bound, " << s.mismatches << " outside)\n";
  }
}

void print_table(std::ostream& os, const std::vector<CaseResult>& results, const std::vector<CaseFailure>& failures,
                 const Roofline& roof) {
  char line[512];
  std::snprintf(line, sizeof(line), "%-58s %8s %9s %8s %6s %7s %6s %7s %5s %14s %9s %7s\n", "case", "mean_s_k",
                "decode_us", "GB/s", "%copy", "TFLOPS", "%gemm", "plan_us", "sets", "target", "of_target", "vs_peer");
  os << line;
  for (const CaseResult& r : results) {
    const Metrics m = metrics(r, roof);
    std::snprintf(line, sizeof(line), "%-58s %8.0f %9.1f %8.0f %5.1f%c %7.1f %5.1f%c %7.2f %5d %14s %9s %7s\n",
                  case_name(r.shape).c_str(), r.mean_s_k, r.decode.median_us, m.gbps, m.pct_copy,
                  m.memory_bound ? '*' : ' ', m.tflops, m.pct_gemm, m.memory_bound ? ' ' : '*', r.plan.median_us,
                  r.input_sets, m.target ? target_string(*m.target).c_str() : "-",
                  m.target ? (format("%.2f", m.of_target) + (m.of_target >= 1.0 ? " met" : "")).c_str() : "-",
                  m.target ? format("%.2fx", m.vs_peer).c_str() : "-");
    os << line;
  }
  for (const CaseResult& r : results) {
    for (const Timing* t : {&r.decode, &r.plan}) {
      if (!t->graph_error.empty()) {
        os << "NOT GRAPH-SAFE " << case_name(r.shape) << " (" << (t == &r.decode ? "decode" : "plan")
           << " timed as issued, host overhead included): " << t->graph_error << "\n";
      }
    }
  }
  for (const CaseFailure& f : failures) {
    os << "FAILED " << case_name(f.shape) << ": " << f.error << "\n";
  }
  bool fp8_header = false;
  for (const CaseResult& r : results) {
    const std::optional<TwinComparison> cmp = compare_with_twin(r, results);
    if (!cmp) {
      continue;
    }
    if (!fp8_header) {
      std::snprintf(line, sizeof(line), "%-58s %9s %9s %8s %8s %s\n", "FP8 case (bytes as stored)", "decode_us",
                    "twin_us", "vs_twin", "target", "(twin: the same case with a plain cache, this run)");
      os << line;
      fp8_header = true;
    }
    std::snprintf(line, sizeof(line), "%-58s %9.1f %9.1f %7.2fx %8s %s\n", case_name(r.shape).c_str(),
                  r.decode.median_us, cmp->twin_us, cmp->speed,
                  cmp->target ? (">= " + format("%.1f", *cmp->target) + "x").c_str() : "-",
                  cmp->target ? (cmp->met ? "met" : "MISSED") : "");
    os << line;
  }
  os << "* the binding ceiling (bytes over copy bandwidth vs FLOPs over GEMM rate). decode_us: median of "
        "CUDA-graph replays. target: the best peer's H200 time (FlashMLA or FA3, 2026-11-30) times the "
        "required speed ratio, as a time (fixed lengths) or a share of this run's ceiling (varlen); "
        "of_target = achieved / target (>= 1 met); vs_peer = of_target * ratio, the estimated speed over "
        "that peer.\n";
  std::vector<double> queried;    // [cases] host us per decode call, pointer queries on
  std::vector<double> unqueried;  // [cases] the same with DecodeArgs::skip_pointer_queries
  for (const CaseResult& r : results) {
    if (std::isfinite(r.decode_host_us) && std::isfinite(r.decode_host_us_unqueried)) {
      queried.push_back(r.decode_host_us);
      unqueried.push_back(r.decode_host_us_unqueried);
    }
  }
  if (!queried.empty()) {
    os << "host time of a decode call (checks and launch, measured while capturing), median over " << queried.size()
       << " cases: " << format("%.1f", median(queried)) << " us, " << format("%.1f", median(unqueried))
       << " us with skip_pointer_queries\n";
  }
}

std::string roofline_json(const Roofline& roof) {
  std::ostringstream os;
  os << "{\"type\":\"roofline\",\"device\":" << json_string(roof.device) << ",\"ordinal\":" << roof.ordinal
     << ",\"cc\":\"" << roof.cc_major << "." << roof.cc_minor << "\",\"sm_count\":" << roof.sm_count
     << ",\"l2_bytes\":" << roof.l2_bytes << ",\"memory_bytes\":" << roof.memory_bytes
     << ",\"driver_version\":" << roof.driver_version << ",\"runtime_version\":" << roof.runtime_version
     << ",\"openmla_version\":" << json_string(OPENMLA_VERSION) << ",\"copy_bytes\":" << roof.copy_bytes
     << ",\"copy_gbps\":" << json_number(roof.copy_gbps) << ",\"gemm_n\":" << roof.gemm_n
     << ",\"gemm_tflops\":" << json_number(roof.gemm_tflops) << "}";
  return os.str();
}

std::string spot_check_json(const SpotCheck& s) {
  std::ostringstream os;
  os << "{\"type\":\"check\",\"name\":" << json_string(s.name) << ",\"passed\":" << (s.passed ? "true" : "false")
     << ",\"rel_frobenius\":" << json_number(s.rel_frobenius) << ",\"max_excess\":" << json_number(s.max_excess)
     << ",\"max_lse_excess\":" << json_number(s.max_lse_excess) << ",\"mismatches\":" << s.mismatches;
  if (!s.error.empty()) {
    os << ",\"error\":" << json_string(s.error);
  }
  os << "}";
  return os.str();
}

std::string case_json(const CaseResult& r, const Roofline& roof, const std::optional<TwinComparison>& twin) {
  const Metrics m = metrics(r, roof);
  std::ostringstream os;
  os << "{\"type\":\"case\",";
  case_fields(os, r.shape);
  os << ",\"mean_s_k\":" << json_number(r.mean_s_k) << ",\"input_sets\":" << r.input_sets
     << ",\"num_parts\":" << r.num_parts << ",\"decode_us\":" << json_number(r.decode.median_us)
     << ",\"decode_us_min\":" << json_number(r.decode.min_us) << ",\"decode_us_max\":" << json_number(r.decode.max_us)
     << ",\"decode_calls_per_replay\":" << r.decode.calls << ",\"repeats\":" << r.decode.repeats
     << ",\"plan_us\":" << json_number(r.plan.median_us) << ",\"decode_host_us\":" << json_number(r.decode_host_us)
     << ",\"decode_host_us_unqueried\":" << json_number(r.decode_host_us_unqueried)
     << ",\"bytes\":" << json_number(m.bytes) << ",\"flops\":" << json_number(m.flops)
     << ",\"gbps\":" << json_number(m.gbps) << ",\"tflops\":" << json_number(m.tflops)
     << ",\"pct_copy\":" << json_number(m.pct_copy) << ",\"pct_gemm\":" << json_number(m.pct_gemm) << ",\"bound\":\""
     << (m.memory_bound ? "memory" : "compute") << "\"";
  if (m.target) {
    const char* kinds[] = {"max_us", "min_pct_copy", "min_pct_gemm"};
    os << ",\"target\":" << json_string(target_string(*m.target)) << ",\"target_kind\":\""
       << kinds[static_cast<int>(m.target->kind)] << "\",\"target_value\":" << json_number(m.target->value)
       << ",\"target_peer\":" << json_string(m.target->peer) << ",\"target_peer_us\":" << json_number(m.target->peer_us)
       << ",\"target_ratio\":" << json_number(m.target->ratio) << ",\"of_target\":" << json_number(m.of_target)
       << ",\"target_met\":" << (m.of_target >= 1.0 ? "true" : "false") << ",\"vs_peer\":" << json_number(m.vs_peer);
  }
  if (twin) {
    os << ",\"twin\":" << json_string(twin->twin) << ",\"twin_us\":" << json_number(twin->twin_us)
       << ",\"speed_vs_twin\":" << json_number(twin->speed);
    if (twin->target) {
      os << ",\"twin_target\":" << json_number(*twin->target)
         << ",\"twin_target_met\":" << (twin->met ? "true" : "false");
    }
  }
  os << ",\"timing\":\"" << (r.decode.graph_error.empty() ? "graph" : "eager") << "\"";
  if (!r.decode.graph_error.empty()) {
    os << ",\"decode_graph_error\":" << json_string(r.decode.graph_error);
  }
  if (!r.plan.graph_error.empty()) {
    os << ",\"plan_graph_error\":" << json_string(r.plan.graph_error);
  }
  os << "}";
  return os.str();
}

std::string failure_json(const CaseFailure& f) {
  std::ostringstream os;
  os << "{\"type\":\"case\",";
  case_fields(os, f.shape);
  os << ",\"error\":" << json_string(f.error) << "}";
  return os.str();
}

double write_cache_gbps(const WriteCacheResult& r) { return r.bytes / (r.timing.median_us * 1e3); }

std::string write_cache_name(const WriteCacheCase& c) { return "write_cache tokens=" + std::to_string(c.tokens); }

void print_write_cache_table(std::ostream& os, const std::vector<WriteCacheResult>& results, const Roofline& roof) {
  char line[256];
  std::snprintf(line, sizeof(line), "%-40s %9s %8s %6s %5s %s\n", "cache write (bf16, 576 values a token)", "us",
                "GB/s", "%copy", "sets", "timing");
  os << line;
  for (const WriteCacheResult& r : results) {
    const double gbps = write_cache_gbps(r);
    std::snprintf(line, sizeof(line), "%-40s %9.2f %8.0f %5.1f%% %5d %s\n", write_cache_name(r.shape).c_str(),
                  r.timing.median_us, gbps, 100.0 * gbps / roof.copy_gbps, r.input_sets,
                  r.timing.graph_error.empty() ? "graph" : ("NOT GRAPH-SAFE: " + r.timing.graph_error).c_str());
    os << line;
  }
  os << "cache write: random distinct slots of a " << (results.empty() ? 0 : results[0].shape.num_blocks)
     << "-page cache; GB/s = (rows read + slots read + rows written) / median time of CUDA-graph replays.\n";
}

std::string write_cache_json(const WriteCacheResult& r, const Roofline& roof) {
  const WriteCacheCase& c = r.shape;
  const double gbps = write_cache_gbps(r);
  std::ostringstream os;
  os << "{\"type\":\"write_cache\",\"name\":" << json_string(write_cache_name(c)) << ",\"tokens\":" << c.tokens
     << ",\"d_v\":" << c.d_v << ",\"d_rope\":" << c.d_rope << ",\"page_size\":" << c.page_size
     << ",\"num_blocks\":" << c.num_blocks << ",\"dtype\":\"bf16\",\"input_sets\":" << r.input_sets
     << ",\"us\":" << json_number(r.timing.median_us) << ",\"us_min\":" << json_number(r.timing.min_us)
     << ",\"us_max\":" << json_number(r.timing.max_us) << ",\"calls_per_replay\":" << r.timing.calls
     << ",\"repeats\":" << r.timing.repeats << ",\"bytes\":" << json_number(r.bytes)
     << ",\"gbps\":" << json_number(gbps) << ",\"pct_copy\":" << json_number(100.0 * gbps / roof.copy_gbps)
     << ",\"timing\":\"" << (r.timing.graph_error.empty() ? "graph" : "eager") << "\"";
  if (!r.timing.graph_error.empty()) {
    os << ",\"graph_error\":" << json_string(r.timing.graph_error);
  }
  os << "}";
  return os.str();
}

std::string write_cache_failure_json(const WriteCacheCase& c, const std::string& error) {
  std::ostringstream os;
  os << "{\"type\":\"write_cache\",\"name\":" << json_string(write_cache_name(c)) << ",\"tokens\":" << c.tokens
     << ",\"error\":" << json_string(error) << "}";
  return os.str();
}

}  // namespace openmla::bench
