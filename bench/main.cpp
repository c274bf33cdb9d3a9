// openmla-bench: the roofline of this GPU, the 14 side-by-side MLA decode cases and the FP8 cases with
// their targets (or one case from the command line) and the cache-write measurements, timed over
// CUDA-graph replays.
// Table on stdout, progress on stderr, JSON lines in --out.

#include <cuda_runtime.h>

#include <algorithm>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <iostream>
#include <iterator>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cases.h"
#include "check.h"
#include "cuda_error.h"
#include "cuda_handles.h"
#include "measure.h"
#include "report.h"
#include "roofline.h"
#include "write_cache.h"

namespace {

using namespace openmla::bench;

constexpr int kUsageError = 2;

const char* const kUsage =
    "usage: openmla-bench [options]\n"
    "  with no case option: the 14 side-by-side cases, each with its H200 target, then the FP8 cases\n"
    "    (after their plain twins), each with its H200 target speed over the twin\n"
    "  case options (one case; the others default to b=128 s_q=1 h_q=16 h_kv=1 s_k=4096 varlen):\n"
    "    --b N --s_q N --h_q N --h_kv N --s_k N --page_size N\n"
    "    --num_parts N          the plan's work parts (default: the library's choice for the device)\n"
    "    --varlen | --fixed     lengths ~ Normal(s_k, s_k/2) (at least s_q), or all s_k\n"
    "    --causal               row i of s_q sees keys 0 .. s_k - s_q + i\n"
    "    --dtype bf16|fp16\n"
    "    --cache plain|fp8_per_tensor|fp8_656   an FP8 cache is measured after its plain twin\n"
    "    --kernel automatic|portable\n"
    "  --write-cache            only the cache-write measurements (otherwise they follow the default cases)\n"
    "  --quick                  fewer and shorter timed runs\n"
    "  --no-check               skip the spot check against the CPU backend\n"
    "  --device N               CUDA device ordinal (default: the current device)\n"
    "  --out FILE               write JSON lines: the roofline, each spot check, each case\n";

struct SizeFlag {
  const char* name;
  int64_t Case::*field;
};
constexpr SizeFlag kSizeFlags[] = {{"--b", &Case::b},       {"--s_q", &Case::s_q}, {"--h_q", &Case::h_q},
                                   {"--h_kv", &Case::h_kv}, {"--s_k", &Case::s_k}, {"--page_size", &Case::page_size},
                                   {"--num_parts", &Case::num_parts}};

struct Options {
  std::optional<Case> custom;  // set by any case option
  bool quick = false;
  bool check = true;
  bool write_cache_only = false;
  std::optional<int> device;
  std::string out;
};

int64_t parse_int(const std::string& flag, const std::string& value) {
  size_t used = 0;
  int64_t v = 0;
  try {
    v = std::stoll(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != value.size() || v < 0) {
    throw std::invalid_argument(flag + ": a non-negative integer expected, given '" + value + "'");
  }
  return v;
}

Options parse(int argc, char** argv) {
  Options o;
  std::vector<std::string> args(argv + 1, argv + argc);
  for (size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::optional<std::string> inline_value;
    if (const size_t eq = flag.find('='); eq != std::string::npos) {
      inline_value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    }
    const auto value = [&]() -> std::string {
      if (inline_value) {
        return *inline_value;
      }
      if (i + 1 >= args.size()) {
        throw std::invalid_argument(flag + ": a value expected");
      }
      return args[++i];
    };
    const auto shape = [&]() -> Case& {
      if (!o.custom) {
        o.custom = Case{};
      }
      return *o.custom;
    };
    const auto size_flag =
        std::find_if(std::begin(kSizeFlags), std::end(kSizeFlags), [&](const SizeFlag& f) { return flag == f.name; });
    if (size_flag != std::end(kSizeFlags)) {
      shape().*(size_flag->field) = parse_int(flag, value());
    } else if (flag == "--varlen") {
      shape().varlen = true;
    } else if (flag == "--fixed") {
      shape().varlen = false;
    } else if (flag == "--causal") {
      shape().causal = true;
    } else if (flag == "--dtype") {
      const std::string d = value();
      if (d != "bf16" && d != "fp16") {
        throw std::invalid_argument("--dtype: bf16 or fp16 expected, given '" + d + "'");
      }
      shape().dtype = d == "bf16" ? openmla::DType::bf16 : openmla::DType::fp16;
    } else if (flag == "--cache") {
      const std::string f = value();
      if (f == "plain" || f == "fp8_per_tensor" || f == "fp8_656") {
        shape().format = f == "plain"            ? openmla::CacheFormat::plain
                         : f == "fp8_per_tensor" ? openmla::CacheFormat::fp8_per_tensor
                                                 : openmla::CacheFormat::fp8_656;
      } else {
        throw std::invalid_argument("--cache: plain, fp8_per_tensor or fp8_656 expected, given '" + f + "'");
      }
    } else if (flag == "--kernel") {
      const std::string k = value();
      if (k != "automatic" && k != "portable") {
        throw std::invalid_argument("--kernel: automatic or portable expected, given '" + k + "'");
      }
      shape().kernel = k == "portable" ? openmla::Kernel::portable : openmla::Kernel::automatic;
    } else if (flag == "--write-cache") {
      o.write_cache_only = true;
    } else if (flag == "--quick") {
      o.quick = true;
    } else if (flag == "--no-check") {
      o.check = false;
    } else if (flag == "--device") {
      o.device = static_cast<int>(parse_int(flag, value()));
    } else if (flag == "--out") {
      o.out = value();
    } else if (flag == "--help" || flag == "-h") {
      std::cout << kUsage;
      std::exit(0);
    } else {
      throw std::invalid_argument("unknown option '" + args[i] + "'");
    }
  }
  return o;
}

// Writes one JSON object per line, flushed at once so a run cut short keeps what it measured.
class JsonLines {
 public:
  explicit JsonLines(const std::string& path) {
    if (!path.empty()) {
      file_.open(path);
      if (!file_) {
        throw std::runtime_error("--out: cannot open '" + path + "' for writing");
      }
    }
  }
  void write(const std::string& line) {
    if (file_.is_open()) {
      file_ << line << std::endl;
    }
  }

 private:
  std::ofstream file_;
};

// The cache-write measurements: progress on stderr, a table on stdout, JSON lines. False when one failed
// or could not be captured in a graph.
bool run_write_cache(const Roofline& roof, JsonLines& json, bool quick, cudaStream_t stream) {
  const std::vector<WriteCacheCase> cases = default_write_cache_cases();
  std::vector<WriteCacheResult> results;
  bool ok = true;
  for (const WriteCacheCase& c : cases) {
    std::cerr << write_cache_name(c) << ": " << std::flush;
    try {
      results.push_back(measure_write_cache(c, roof.l2_bytes, quick, stream));
      const WriteCacheResult& r = results.back();
      std::cerr << r.timing.median_us << " us (min " << r.timing.min_us << ", max " << r.timing.max_us << ", "
                << r.input_sets << " input sets)\n";
      json.write(write_cache_json(r, roof));
      ok = ok && r.timing.graph_error.empty();
    } catch (const std::exception& e) {
      std::cerr << "FAILED: " << e.what() << "\n";
      std::cout << "FAILED " << write_cache_name(c) << ": " << e.what() << "\n";
      json.write(write_cache_failure_json(c, e.what()));
      ok = false;
    }
  }
  print_write_cache_table(std::cout, results, roof);
  return ok;
}

int run(const Options& o) {
  if (o.device) {
    SUPPORT_CUDA(cudaSetDevice(*o.device));
  }
  JsonLines json(o.out);
  const openmla::support::Stream stream = openmla::support::make_stream();
  bool ok = true;

  const Roofline roof = measure_roofline(o.quick, stream.get());
  print_roofline(std::cout, roof);
  json.write(roofline_json(roof));

  if (o.check) {
    const std::vector<SpotCheck> checks = run_spot_checks(stream.get());
    print_spot_checks(std::cout, checks);
    for (const SpotCheck& s : checks) {
      json.write(spot_check_json(s));
      ok = ok && s.passed;
    }
  }
  std::cout << std::flush;

  if (o.write_cache_only) {
    return run_write_cache(roof, json, o.quick, stream.get()) && ok ? 0 : 1;
  }
  std::vector<Case> cases = default_cases();
  if (o.custom) {
    cases = {*o.custom};
    if (o.custom->format != openmla::CacheFormat::plain) {
      cases.insert(cases.begin(), plain_twin(*o.custom));
    }
  }
  std::vector<CaseResult> results;
  std::vector<CaseFailure> failures;
  for (size_t i = 0; i < cases.size(); ++i) {
    std::cerr << "[" << i + 1 << "/" << cases.size() << "] " << case_name(cases[i]) << ": " << std::flush;
    try {
      results.push_back(measure_case(cases[i], roof.l2_bytes, o.quick, stream.get()));
      const CaseResult& r = results.back();
      std::cerr << r.decode.median_us << " us (min " << r.decode.min_us << ", max " << r.decode.max_us << ", "
                << r.decode.calls << " calls per replay, " << r.input_sets << " input sets)\n";
      json.write(case_json(r, roof, compare_with_twin(r, results)));
      ok = ok && r.decode.graph_error.empty() && r.plan.graph_error.empty();
    } catch (const std::exception& e) {
      std::cerr << "FAILED: " << e.what() << "\n";
      failures.push_back(CaseFailure{cases[i], e.what()});
      json.write(failure_json(failures.back()));
      ok = false;
    }
  }
  print_table(std::cout, results, failures, roof);
  if (!o.custom) {
    ok = run_write_cache(roof, json, o.quick, stream.get()) && ok;
  }
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  try {
    options = parse(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "openmla-bench: " << e.what() << "\n" << kUsage;
    return kUsageError;
  }
  try {
    return run(options);
  } catch (const std::exception& e) {
    std::cerr << "openmla-bench: " << e.what() << "\n";
    return 1;
  }
}
