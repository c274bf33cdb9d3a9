// openmla-demo: one DeepSeek-V3-shaped MLA decoding step through the public API: b=16 sequences of
// about 2048 tokens (lengths drawn around it), 128 query heads over one 576-wide latent KV head,
// d_v=512, pages of 64 tokens, bf16. It builds the paged cache, plans the step, decodes on GPU 0 when
// there is one (else on the CPU), times the decode, and checks a few rows against a float64 reference
// computed here. Exit status 0 when they match.
//
// Only <openmla/openmla.h> is needed; the GPU path also uses support/ (checked CUDA calls, owning
// device buffers), and is compiled when openmla has its CUDA backend (OPENMLA_WITH_CUDA).

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "openmla/openmla.h"

#ifdef OPENMLA_WITH_CUDA
#include <cuda_runtime.h>

#include "cuda_error.h"
#include "cuda_handles.h"
#include "cuda_memory.h"
#endif

namespace {

constexpr int64_t kBatch = 16;
constexpr int64_t kHeadsQ = 128;
constexpr int64_t kHeadsKv = 1;
constexpr int64_t kDqk = 576;  // 512 latent + 64 RoPE
constexpr int64_t kDv = 512;   // v = the first 512 columns of each cache row
constexpr int64_t kPage = 64;
constexpr int64_t kMeanLength = 2048;
constexpr uint64_t kSeed = 2025;

constexpr const char* kUsage =
    "usage: openmla-demo\n"
    "Runs one DeepSeek-V3-shaped MLA decode step (b=16, h_q=128, h_kv=1, d_qk=576, d_v=512, pages of 64,\n"
    "bf16, lengths around 2048) on GPU 0, or on the CPU when there is no GPU; prints its time and\n"
    "throughput, checks 9 rows against a float64 reference, and exits 0 when they match.\n";

// bf16 <-> float: bf16 is the top half of a float; round to nearest even (inputs here are finite).
uint16_t to_bf16(float x) {
  const uint32_t u = std::bit_cast<uint32_t>(x);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
double from_bf16(uint16_t b) { return std::bit_cast<float>(static_cast<uint32_t>(b) << 16); }

// The step's inputs in host memory, contiguous.
struct Problem {
  std::vector<int32_t> lengths;  // [b] s_k of each sequence
  int64_t max_pages = 0;         // block-table width: the longest sequence's pages
  int64_t num_pages = 0;
  std::vector<int32_t> block_table;  // [b, max_pages]; -1 past a sequence's pages (never read)
  std::vector<uint16_t> q;           // [b, 1, h_q, d_qk] bf16
  std::vector<uint16_t> k_cache;     // [num_pages, page, h_kv, d_qk] bf16
};

// Lengths ~ Normal(mean, mean / 2) in [1, 2 * mean]; pages in a shuffled order, as an engine's
// allocator leaves them; q and cache ~ N(0, 0.1^2).
Problem make_problem() {
  std::mt19937_64 rng(kSeed);
  std::normal_distribution<double> length(kMeanLength, kMeanLength / 2.0);
  Problem p;
  for (int64_t i = 0; i < kBatch; ++i) {
    p.lengths.push_back(static_cast<int32_t>(std::clamp<double>(std::round(length(rng)), 1, 2 * kMeanLength)));
    const int64_t pages = (p.lengths.back() + kPage - 1) / kPage;
    p.max_pages = std::max(p.max_pages, pages);
    p.num_pages += pages;
  }
  std::vector<int32_t> order(static_cast<size_t>(p.num_pages));
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng);
  p.block_table.assign(static_cast<size_t>(kBatch * p.max_pages), -1);
  size_t next = 0;
  for (int64_t i = 0; i < kBatch; ++i) {
    for (int64_t j = 0; j * kPage < p.lengths[i]; ++j) {
      p.block_table[i * p.max_pages + j] = order[next++];
    }
  }
  std::normal_distribution<float> value(0.0f, 0.1f);
  p.q.resize(static_cast<size_t>(kBatch * kHeadsQ * kDqk));
  p.k_cache.resize(static_cast<size_t>(p.num_pages * kPage * kHeadsKv * kDqk));
  for (uint16_t& x : p.q) {
    x = to_bf16(value(rng));
  }
  for (uint16_t& x : p.k_cache) {
    x = to_bf16(value(rng));
  }
  return p;
}

// The decode's results in host memory.
struct Result {
  std::vector<uint16_t> out = std::vector<uint16_t>(kBatch * kHeadsQ * kDv);  // [b, 1, h_q, d_v] bf16
  std::vector<float> lse = std::vector<float>(kBatch * kHeadsQ);              // [b, h_q, 1]
  double seconds = 0.0;                                                       // median decode time
  const char* backend = "";
};

openmla::PlanConfig plan_config(openmla::Device device) {
  return {.batch = kBatch, .s_q = 1, .h_q = kHeadsQ, .h_kv = kHeadsKv, .page_size = kPage, .device = device};
}

// Decode arguments over the given buffers (each already on `device`).
openmla::DecodeArgs decode_args(const Problem& p, openmla::Device device, void* q, void* k_cache, void* block_table,
                                void* lengths, void* out, void* lse) {
  using openmla::DType;
  openmla::DecodeArgs args;
  args.q = openmla::make_view(q, DType::bf16, {kBatch, 1, kHeadsQ, kDqk}, device);
  args.k_cache = openmla::make_view(k_cache, DType::bf16, {p.num_pages, kPage, kHeadsKv, kDqk}, device);
  args.block_table = openmla::make_view(block_table, DType::int32, {kBatch, p.max_pages}, device);
  args.cache_seqlens = openmla::make_view(lengths, DType::int32, {kBatch}, device);
  args.d_v = kDv;
  args.out = openmla::make_view(out, DType::bf16, {kBatch, 1, kHeadsQ, kDv}, device);
  args.lse = openmla::make_view(lse, DType::fp32, {kBatch, kHeadsQ, 1}, device);
  return args;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The CPU backend: plan once, decode three times, all in host memory.
Result run_on_cpu(Problem& p) {
  constexpr int kRepeats = 3;
  const openmla::PlanConfig config = plan_config({});
  std::vector<int64_t> plan_memory(static_cast<size_t>(openmla::plan_buffer_size(config) / 8 + 1));  // 8-aligned
  const openmla::TensorView lengths = openmla::make_view(p.lengths.data(), openmla::DType::int32, {kBatch});
  const openmla::Plan plan =
      openmla::plan(config, lengths, {plan_memory.data(), static_cast<int64_t>(plan_memory.size() * 8)});
  const int64_t workspace_bytes = openmla::workspace_size(plan.config, kDv);
  const std::unique_ptr<void, decltype(&std::free)> workspace(
      std::aligned_alloc(openmla::kWorkspaceAlignment,
                         static_cast<size_t>((workspace_bytes + openmla::kWorkspaceAlignment - 1) /
                                             openmla::kWorkspaceAlignment * openmla::kWorkspaceAlignment)),
      &std::free);

  Result r{.backend = "cpu (no GPU found)"};
  openmla::DecodeArgs args = decode_args(p, {}, p.q.data(), p.k_cache.data(), p.block_table.data(), p.lengths.data(),
                                         r.out.data(), r.lse.data());
  args.plan = &plan;
  args.workspace = {workspace.get(), workspace_bytes};
  std::vector<double> times;
  for (int i = 0; i < kRepeats; ++i) {
    const auto start = std::chrono::steady_clock::now();
    openmla::decode(args);
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  r.seconds = median(times);
  return r;
}

#ifdef OPENMLA_WITH_CUDA
// GPU 0: inputs copied over, plan and decode on a stream, each decode timed with CUDA events.
Result run_on_gpu(const Problem& p) {
  using openmla::support::DeviceBuffer;
  constexpr int kRepeats = 20;
  const openmla::Device gpu{openmla::DeviceType::cuda, 0};
  auto copy_of = [](const auto& host) {
    DeviceBuffer d(static_cast<int64_t>(host.size() * sizeof(host[0])));
    d.upload(host.data(), d.bytes());
    return d;
  };
  const DeviceBuffer q = copy_of(p.q);
  const DeviceBuffer k_cache = copy_of(p.k_cache);
  const DeviceBuffer block_table = copy_of(p.block_table);
  const DeviceBuffer lengths = copy_of(p.lengths);
  Result r{.backend = "cuda (GPU 0)"};
  DeviceBuffer out(static_cast<int64_t>(r.out.size() * sizeof(uint16_t)));
  DeviceBuffer lse(static_cast<int64_t>(r.lse.size() * sizeof(float)));
  const openmla::support::Stream stream = openmla::support::make_stream();

  const openmla::PlanConfig config = plan_config(gpu);
  const DeviceBuffer plan_memory(openmla::plan_buffer_size(config));
  const openmla::Plan plan =
      openmla::plan(config, openmla::make_view(lengths.data(), openmla::DType::int32, {kBatch}, gpu),
                    {plan_memory.data(), plan_memory.bytes(), gpu}, stream.get());
  const DeviceBuffer workspace(openmla::workspace_size(plan.config, kDv));  // cudaMalloc: 256-byte aligned

  openmla::DecodeArgs args =
      decode_args(p, gpu, q.data(), k_cache.data(), block_table.data(), lengths.data(), out.data(), lse.data());
  args.plan = &plan;
  args.workspace = {workspace.data(), workspace.bytes(), gpu};
  args.stream = stream.get();
  const openmla::support::Event start = openmla::support::make_event();
  const openmla::support::Event stop = openmla::support::make_event();
  openmla::decode(args);  // warm-up
  std::vector<double> times;
  for (int i = 0; i < kRepeats; ++i) {
    SUPPORT_CUDA(cudaEventRecord(start.get(), stream.get()));
    openmla::decode(args);
    SUPPORT_CUDA(cudaEventRecord(stop.get(), stream.get()));
    SUPPORT_CUDA(cudaEventSynchronize(stop.get()));
    float ms = 0.0f;
    SUPPORT_CUDA(cudaEventElapsedTime(&ms, start.get(), stop.get()));
    times.push_back(ms * 1e-3);
  }
  // Lengths and page indices are checked on the device; a bad one would be reported here.
  openmla::check_status(openmla::read_status(args.workspace, stream.get()));
  r.seconds = median(times);
  out.download(r.out.data(), out.bytes());
  lse.download(r.lse.data(), lse.bytes());
  return r;
}
#endif

// Row (seq, head) in float64 from the same bf16 inputs, compared with the decode's: every out element
// within 1e-3 + |ref| / 64 and lse within 1e-5 + 2e-4 |ref| (bf16 output rounding, fp32 accumulation).
struct RowCheck {
  int64_t mismatches = 0;
  double max_out_error = 0.0;
};

RowCheck check_row(const Problem& p, const Result& r, int64_t seq, int64_t head) {
  const double scale = 1.0 / std::sqrt(static_cast<double>(kDqk));
  const uint16_t* q = &p.q[(seq * kHeadsQ + head) * kDqk];  // [d_qk]
  const int64_t kv_head = head / (kHeadsQ / kHeadsKv);
  std::vector<const uint16_t*> keys;  // [s_k] rows of the cache, [d_qk] each
  for (int64_t j = 0; j < p.lengths[seq]; ++j) {
    const int64_t page = p.block_table[seq * p.max_pages + j / kPage];
    keys.push_back(&p.k_cache[((page * kPage + j % kPage) * kHeadsKv + kv_head) * kDqk]);
  }
  std::vector<double> scores;
  for (const uint16_t* k : keys) {
    double dot = 0.0;
    for (int64_t d = 0; d < kDqk; ++d) {
      dot += from_bf16(q[d]) * from_bf16(k[d]);
    }
    scores.push_back(dot * scale);
  }
  const double max_score = *std::max_element(scores.begin(), scores.end());
  double sum = 0.0;
  std::vector<double> out(kDv, 0.0);
  for (size_t j = 0; j < keys.size(); ++j) {
    const double w = std::exp(scores[j] - max_score);
    sum += w;
    for (int64_t d = 0; d < kDv; ++d) {
      out[d] += w * from_bf16(keys[j][d]);
    }
  }
  RowCheck c;
  for (int64_t d = 0; d < kDv; ++d) {
    const double want = out[d] / sum;
    const double error = std::fabs(from_bf16(r.out[(seq * kHeadsQ + head) * kDv + d]) - want);
    c.max_out_error = std::max(c.max_out_error, error);
    c.mismatches += !(error <= 1e-3 + std::fabs(want) / 64);
  }
  const double want_lse = max_score + std::log(sum);
  c.mismatches += !(std::fabs(r.lse[seq * kHeadsQ + head] - want_lse) <= 1e-5 + 2e-4 * std::fabs(want_lse));
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) {
    const bool help = std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0;
    std::fputs(kUsage, help ? stdout : stderr);
    return help ? 0 : 2;
  }
  Problem p = make_problem();
  const double mean_length = std::accumulate(p.lengths.begin(), p.lengths.end(), 0.0) / kBatch;
  std::printf("openmla %s demo: DeepSeek-V3 decode step\n", OPENMLA_VERSION);
  std::printf("  b=%lld s_q=1 h_q=%lld h_kv=%lld d_qk=%lld d_v=%lld page=%lld bf16, s_k mean %.0f (min %d, max %d)\n",
              static_cast<long long>(kBatch), static_cast<long long>(kHeadsQ), static_cast<long long>(kHeadsKv),
              static_cast<long long>(kDqk), static_cast<long long>(kDv), static_cast<long long>(kPage), mean_length,
              *std::min_element(p.lengths.begin(), p.lengths.end()),
              *std::max_element(p.lengths.begin(), p.lengths.end()));

#ifdef OPENMLA_WITH_CUDA
  const Result r = openmla::support::cuda_device_count() > 0 ? run_on_gpu(p) : run_on_cpu(p);
#else
  const Result r = run_on_cpu(p);
#endif
  // The bytes that must move (q, the cache rows in use, out) and the FLOPs of both products.
  const double bytes = kBatch * (kHeadsQ * kDqk * 2 + mean_length * kHeadsKv * kDqk * 2 + kHeadsQ * kDv * 2);
  const double flops = 2.0 * kBatch * kHeadsQ * mean_length * (kDqk + kDv);
  std::printf("backend: %s\ndecode: %.3f ms (median)  %.2f GB/s  %.3f TFLOPS\n", r.backend, r.seconds * 1e3,
              bytes / r.seconds * 1e-9, flops / r.seconds * 1e-12);

  int64_t rows = 0;
  int64_t mismatches = 0;
  double max_out_error = 0.0;
  for (int64_t seq : {int64_t{0}, kBatch / 2, kBatch - 1}) {
    for (int64_t head : {int64_t{0}, kHeadsQ / 2 + 13, kHeadsQ - 1}) {
      const RowCheck c = check_row(p, r, seq, head);
      ++rows;
      mismatches += c.mismatches;
      max_out_error = std::max(max_out_error, c.max_out_error);
    }
  }
  std::printf("check: %lld rows against float64, max |out - ref| %.3g, %lld values out of bounds\n",
              static_cast<long long>(rows), max_out_error, static_cast<long long>(mismatches));
  std::printf("%s\n",
              mismatches == 0 ? "PASS: matches the float64 reference (tolerances: docs/design.md, Testing)" : "FAIL");
  return mismatches == 0 ? 0 : 1;
}
