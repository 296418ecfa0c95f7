// `aisio perf cuda-run`: the host runner (kernels in kernels.cu). See cuda_run.hpp.
#include <fmt/format.h>

#include <chrono>
#include <cstring>
#include <thread>

#include "common/error.hpp"
#include "emu/controller.hpp"
#include "gpu/cuda.hpp"
#include "gpu/cuda_run.hpp"
#include "gpu/kernels.hpp"
#include "gpu/queues.hpp"
#include "nvme/controller.hpp"
#include "backends/gpus.hpp"
#include "perf/engines.hpp"
#include "report/record.hpp"
#include "report/table.hpp"
#include "target/farm.hpp"

namespace aisio::gpu {

namespace {

using kern::QueueIo;
using kern::QueueOut;
using kern::RunParams;

struct HostFlag {
  volatile int* host = nullptr;
  int* dev = nullptr;
  HostFlag() {
    void* h = nullptr;
    AISIO_CUDA(cudaHostAlloc(&h, 64, cudaHostAllocMapped | cudaHostAllocPortable));
    std::memset(h, 0, 64);
    host = static_cast<volatile int*>(h);
    void* d = nullptr;
    AISIO_CUDA(cudaHostGetDevicePointer(&d, h, 0));
    dev = static_cast<int*>(d);
  }
  ~HostFlag() { cudaFreeHost(const_cast<int*>(host)); }
};

struct Stream {
  cudaStream_t s = nullptr;
  Stream() { AISIO_CUDA(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking)); }
  ~Stream() { cudaStreamDestroy(s); }
};

// Every block of the run must be resident at once (a block waiting for an SM would
// start only when others stop).
void check_residency(uint32_t blocks, uint32_t threads, const DeviceInfo& di, uint32_t extra_threads = 0) {
  int per_sm = 0;
  AISIO_CUDA(kern::run_blocks_per_sm(threads, &per_sm));
  uint64_t cap = uint64_t(per_sm) * uint64_t(di.sms);
  if (extra_threads) cap = cap > extra_threads / 1024 + 1 ? cap - (extra_threads / 1024 + 1) : 0;
  if (blocks > cap)
    throw Error(Errc::invalid_argument,
                fmt::format("{} queues of {} threads do not fit on the GPU at once ({} blocks of {} threads resident "
                            "on {} SMs)",
                            blocks, threads, cap, threads, di.sms));
}

// Each queue's kernel output and state (in the order of r.queues) into its row and the totals.
void fill_totals(CudaRunResult& r, const std::vector<QueueOut>& outs, const std::vector<QueueState>& sts, uint32_t bs) {
  unsigned long long t0 = ~0ull, t1 = 0;
  for (size_t i = 0; i < outs.size(); ++i) {
    const auto& o = outs[i];
    auto& q = r.queues[i];
    q.submitted = sts[i].submitted;
    q.completed = sts[i].completed;
    q.timeouts = sts[i].timeouts;
    q.spurious = sts[i].spurious;
    r.timeouts += q.timeouts;
    r.spurious += q.spurious;
    q.rounds = o.rounds;
    q.ios = o.ios;
    q.errors = o.errors;
    q.first_error = o.first_error;
    q.seconds = o.t_end > o.t_start ? double(o.t_end - o.t_start) * 1e-9 : 0;
    t0 = std::min(t0, o.t_start);
    t1 = std::max(t1, o.t_end);
    r.ios += o.ios;
    r.errors += o.errors;
    if (o.first_error && r.first_error_text.empty())
      r.first_error_text = fmt::format("{} on {} queue {}", status_text(o.first_error), q.device, q.qid);
  }
  r.seconds = t1 > t0 ? double(t1 - t0) * 1e-9 : 0;
  r.iops = r.seconds > 0 ? double(r.ios) / r.seconds : 0;
  r.bytes_per_s = r.iops * bs;
}

// A kernel of the run: its GPU, stop flag and stream.
struct Launched {
  int gpu;
  HostFlag* stop;
  cudaStream_t stream;
};

// Lets the kernels run for the run time (or until one ends early: an error), then sets
// every stop flag and waits for every stream.
void run_and_stop(const CudaRunOptions& o, const std::vector<Launched>& ks) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(o.runtime_s);
  auto one_ended = [&] {
    for (const auto& k : ks) {
      use_device(k.gpu);
      if (cudaStreamQuery(k.stream) != cudaErrorNotReady) return true;
    }
    return false;
  };
  while (std::chrono::steady_clock::now() < end && !one_ended())
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  for (const auto& k : ks) *k.stop->host = 1;
  for (const auto& k : ks) {
    use_device(k.gpu);
    AISIO_CUDA(cudaStreamSynchronize(k.stream));
  }
}

PollConfig poll_config(const CudaRunOptions& o, const DeviceInfo& di) {
  PollConfig pc;
  pc.timeout_cycles = (long long)(o.timeout_ms * double(di.clock_khz));
  pc.backoff_ns = o.backoff_ns;
  return pc;
}

// ---- the GPU-resident null controller -------------------------------------------------------
CudaRunResult run_null_gpu(const CudaRunOptions& o, const DeviceInfo& di) {
  CudaRunResult r;
  r.mode = "null-gpu";
  const uint32_t nq = o.null_gpu, depth = o.qd + 1;
  check_residency(nq, o.qd, di, nq * 32);
  DevArray<Sqe64> sq(size_t(nq) * depth);
  DevArray<Cqe16> cq(size_t(nq) * depth);
  DevArray<uint32_t> db(size_t(nq) * 2);
  std::vector<QueueState> st0(nq);
  DevArray<QueueState> states(nq, st0.data());
  std::vector<QueueView> views(nq);
  for (uint32_t i = 0; i < nq; ++i) {
    QueueView& v = views[i];
    v = QueueView{};
    v.sq = sq.p + size_t(i) * depth;
    v.cq = cq.p + size_t(i) * depth;
    v.sq_db = db.p + 2 * i;
    v.cq_db = db.p + 2 * i + 1;
    v.state = states.p + i;
    v.depth = depth;
    v.qid = uint16_t(i + 1);
    CudaQueueResult q;
    q.device = "null-gpu";
    q.qid = v.qid;
    r.queues.push_back(q);
  }
  r.devices = {"null-gpu"};
  DevArray<QueueView> dviews(nq, views.data());
  std::vector<QueueIo> io(nq, QueueIo{0, uint64_t(1) << 30, 1, 1});
  DevArray<QueueIo> dio(nq, io.data());
  DevArray<uint64_t> prps(size_t(nq) * o.qd * 2);
  DevArray<QueueOut> outs(nq);
  DevArray<unsigned long long> served(nq);
  HostFlag stop, cstop, running;

  Stream cs, rs;
  NullControllerParams np{dviews.p, nq, cstop.dev, running.dev, served.p};
  AISIO_CUDA(kern::launch_null_controller(np, cs.s));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (*running.host < int(nq)) {
    if (std::chrono::steady_clock::now() > deadline) {
      *cstop.host = 1;
      cudaStreamSynchronize(cs.s);
      throw Error(Errc::timeout, "the GPU-resident null controller did not start");
    }
    std::this_thread::yield();
  }
  RunParams p{dviews.p, dio.p, prps.p, 0x02, perf::rw_random(o.rw), o.seed, stop.dev, std::max(1u, o.stop_every),
              poll_config(o, di), outs.p};
  try {
    AISIO_CUDA(kern::launch_run(p, nq, o.qd, rs.s));
    run_and_stop(o, {{di.ordinal, &stop, rs.s}});
  } catch (...) {
    *cstop.host = 1;
    cudaStreamSynchronize(cs.s);
    throw;
  }
  *cstop.host = 1;
  AISIO_CUDA(cudaStreamSynchronize(cs.s));
  fill_totals(r, outs.read(), states.read(), o.bs);
  auto srv = served.read();
  r.controller_counts_checked = true;
  uint64_t gs = 0, cs_total = 0;
  for (uint32_t i = 0; i < nq; ++i) {
    gs += r.queues[i].submitted;
    cs_total += srv[i];
    if (r.queues[i].submitted != srv[i]) r.controller_counts_match = false;
  }
  r.per_device_counts.push_back({gs, cs_total});
  return r;
}

// ---- NVMe controllers -----------------------------------------------------------------------
struct Dev {
  std::string name;
  std::shared_ptr<target::Target> target;
  std::shared_ptr<nvme::Controller> ctrl;
  emu::SoftController* soft = nullptr;
  perf::Region region;  // perf's region maths: --size, --bs against the namespace
  uint32_t lba_size = 512;
  uint64_t emu_before = 0;
};

// One GPU slot's queue pairs and buffers on one device. The queues are declared last:
// they go first (Delete I/O SQ/CQ), then the buffers they point into.
struct SlotDev {
  std::shared_ptr<GpuController> g;
  DmaBuffer data, lists;
  std::unique_ptr<QueueSet> qs;
};

// One entry of --gpus: its queue pairs on every device, its kernel on its own stream.
struct Slot {
  int gpu = 0;
  DeviceInfo di;
  std::vector<SlotDev> devs;
  std::unique_ptr<DevArray<QueueView>> views;
  std::unique_ptr<DevArray<QueueIo>> io;
  std::unique_ptr<DevArray<uint64_t>> prps;
  std::unique_ptr<DevArray<QueueOut>> outs;
  std::unique_ptr<HostFlag> stop;
  std::unique_ptr<Stream> stream;
};

std::vector<Dev> open_devices(const CudaRunOptions& o) {
  std::vector<Dev> devs;
  auto add = [&](std::shared_ptr<target::Target> t) {
    Dev d;
    d.name = t->describe();
    d.ctrl = t->controller();
    // The GPU rings the controller's doorbells itself: it needs BAR0, which homid keeps.
    if (!d.ctrl) throw Error(Errc::not_supported, d.name + ": cuda-run needs a controller this process drives");
    d.soft = t->soft_controller();
    d.target = std::move(t);
    const auto& ns = d.ctrl->ns(o.nsid);
    d.region = perf::make_region(o, 0, d.name, ns.bytes(), ns.lba_size);
    d.lba_size = ns.lba_size;
    size_t mdts = d.ctrl->mdts_bytes();
    if (mdts && o.bs > mdts)
      throw Error(Errc::invalid_argument, fmt::format("{}: --bs {} exceeds MDTS ({} bytes)", d.name, o.bs, mdts));
    devs.push_back(std::move(d));
  };
  for (auto& t : target::open_farm(o.emu)) add(std::move(t));
  for (const auto& h : o.targets) add(target::open(h));
  if (devs.empty()) throw Error(Errc::invalid_argument, "cuda-run: no targets (give handles, --emu-devices N or --null-gpu N)");
  return devs;
}

// Queue pairs, buffers and PRPs of slot `sl` on every device; its rows of r.queues.
void provision(Slot& sl, std::vector<Dev>& devs, const CudaRunOptions& o, CudaRunResult& r) {
  use_device(sl.gpu);
  std::vector<QueueView> views;
  std::vector<QueueIo> io;
  std::vector<uint64_t> prps;
  for (auto& d : devs) {
    SlotDev sd;
    sd.g = GpuController::open(d.ctrl, sl.gpu);
    sd.qs = std::make_unique<QueueSet>(sd.g, QueueSetOptions{o.queues, o.qd + 1});
    const size_t slots = size_t(o.queues) * o.qd;
    sd.data = sd.g->data_heap()->alloc(slots * o.bs, kGpuPage);
    const uint32_t page = d.ctrl->page_size();
    if (o.bs > page) sd.lists = sd.g->queue_heap()->alloc(slots * page, page);  // PRP list per slot (used beyond 2 pages)
    for (uint32_t q = 0; q < o.queues; ++q) {
      views.push_back(sd.qs->host_views()[q]);
      io.push_back(QueueIo{d.region.start / d.lba_size, d.region.blocks, o.bs / d.lba_size, o.nsid});
      CudaQueueResult qr;
      qr.device = d.name;
      qr.gpu = sl.gpu;
      qr.qid = sd.qs->qid(q);
      r.queues.push_back(qr);
      for (uint32_t t = 0; t < o.qd; ++t) {
        size_t slot = size_t(q) * o.qd + t;
        uint64_t p1 = 0, p2 = 0;
        slot_prp(*sd.g, sd.data, slot * o.bs, o.bs, sd.lists, slot * page, p1, p2);
        prps.push_back(p1);
        prps.push_back(p2);
      }
    }
    sl.devs.push_back(std::move(sd));
  }
  sl.views = std::make_unique<DevArray<QueueView>>(views.size(), views.data());
  sl.io = std::make_unique<DevArray<QueueIo>>(io.size(), io.data());
  sl.prps = std::make_unique<DevArray<uint64_t>>(prps.size(), prps.data());
  sl.outs = std::make_unique<DevArray<QueueOut>>(views.size());
  sl.stop = std::make_unique<HostFlag>();
  sl.stream = std::make_unique<Stream>();
}

CudaRunResult run_nvme(const CudaRunOptions& o) {
  CudaRunResult r;
  r.mode = "nvme";
  std::vector<Dev> devs = open_devices(o);
  const std::vector<int> gpus = o.gpu_list();
  const auto plan = backends::plan_queues(gpus.size(), devs.size(), o.queues);
  for (auto [g, blocks] : backends::blocks_per_gpu(gpus, plan.per_slot)) check_residency(uint32_t(blocks), o.qd, device_info(g));

  std::vector<std::unique_ptr<Slot>> slots;
  for (int g : gpus) {
    slots.push_back(std::make_unique<Slot>());
    slots.back()->gpu = g;
    slots.back()->di = device_info(g);
    provision(*slots.back(), devs, o, r);
  }
  for (auto& d : devs) {
    r.devices.push_back(d.name);
    if (d.soft) d.emu_before = d.soft->stats().io_commands;
  }
  const uint8_t opc = perf::read_percent(o.rw, 0) == 0 ? 0x01 : 0x02;  // Write : Read
  std::vector<Launched> launched;
  for (auto& sl : slots) {
    use_device(sl->gpu);
    RunParams p{sl->views->p, sl->io->p, sl->prps->p, opc, perf::rw_random(o.rw), o.seed, sl->stop->dev,
                std::max(1u, o.stop_every), poll_config(o, sl->di), sl->outs->p};
    AISIO_CUDA(kern::launch_run(p, plan.per_slot, o.qd, sl->stream->s));
    launched.push_back({sl->gpu, sl->stop.get(), sl->stream->s});
  }
  run_and_stop(o, launched);
  // Kernel outputs and queue states in the order of r.queues (slot, device, queue).
  std::vector<QueueOut> out;
  std::vector<QueueState> sts;
  for (auto& sl : slots) {
    use_device(sl->gpu);
    auto o1 = sl->outs->read();
    out.insert(out.end(), o1.begin(), o1.end());
    for (auto& sd : sl->devs) {
      auto s1 = sd.qs->read_states();
      sts.insert(sts.end(), s1.begin(), s1.end());
    }
  }
  fill_totals(r, out, sts, o.bs);
  // The controllers' own counts, per device over every slot.
  std::vector<uint64_t> submitted(devs.size(), 0);
  for (size_t qi = 0; qi < sts.size(); ++qi) submitted[qi / o.queues % devs.size()] += sts[qi].submitted;
  r.controller_counts_checked = true;
  for (size_t di = 0; di < devs.size(); ++di) {
    auto& d = devs[di];
    if (d.soft) {
      // The controller's worker may still be finishing nothing: every command it saw has
      // completed (the GPU reaped them all), so its count is final.
      uint64_t executed = d.soft->stats().io_commands - d.emu_before;
      r.per_device_counts.push_back({submitted[di], executed});
      if (executed != submitted[di]) r.controller_counts_match = false;
    } else {
      r.controller_counts_checked = false;
    }
  }
  // Queues and buffers (the slots) before the controllers.
  slots.clear();
  devs.clear();
  return r;
}

}  // namespace

std::string status_text(uint32_t s) {
  switch (s) {
    case st::kOk: return "ok";
    case st::kTimeout: return "timeout (no completion within the poll timeout)";
    case st::kLost: return "lost (no completion in its round)";
    case st::kQueueBroken: return "queue broken by an earlier timeout";
    case st::kNotSubmitted: return "not submitted";
    case st::kPrpError: return "PRPs could not be built";
    case st::kNeverRun: return "not executed";
  }
  if (st::host_outcome(s)) return fmt::format("host status {:#x}", s);
  return nvme::status_name(nvme::Status(uint16_t(s & 0x7FFF)));
}

CudaRunResult cuda_run(const CudaRunOptions& o) {
  std::string why;
  if (!device_present(&why)) throw Error(Errc::not_supported, "cuda-run: " + why);
  if (o.qd < 1 || o.qd > 1023) throw Error(Errc::invalid_argument, "--qd must be 1..1023 (threads per queue)");
  if (o.queues < 1) throw Error(Errc::invalid_argument, "--queues must be at least 1");
  if (o.bs < 512 || o.bs % 512) throw Error(Errc::invalid_argument, "--bs must be a multiple of 512");
  if (o.runtime_s <= 0) throw Error(Errc::invalid_argument, "--runtime must be positive");
  if (perf::rw_mixed(o.rw)) throw Error(Errc::invalid_argument, "--rw: randread, read, randwrite or write");
  const std::vector<int> gpus = o.gpu_list();
  if (o.null_gpu && gpus.size() > 1)
    throw Error(Errc::invalid_argument, "--null-gpu runs on one GPU: give --device instead of --gpus");
  use_device(gpus[0]);
  DeviceInfo di = device_info(gpus[0]);
  CudaRunResult r = o.null_gpu ? run_null_gpu(o, di) : run_nvme(o);
  r.opt = o;
  r.gpu = describe(di);
  for (size_t i = 1; i < gpus.size(); ++i)
    if (gpus[i] != gpus[0]) r.gpu += "; " + describe(device_info(gpus[i]));
  r.gpu_name = di.name;
  r.driver = di.driver;
  r.threads = uint32_t(r.queues.size()) * o.qd;
  r.commit = report::build_commit();
  return r;
}

nlohmann::ordered_json to_json(const CudaRunResult& r) {
  const auto& o = r.opt;
  nlohmann::ordered_json j;
  j["tool"] = "aisio perf cuda-run";
  j["command"] = o.command_line;
  j["commit"] = r.commit;
  j["gpu"] = r.gpu;
  j["gpu_name"] = r.gpu_name;
  j["driver"] = r.driver;
  j["mode"] = r.mode;
  j["devices"] = r.devices;
  j["options"] = {{"queues_per_device", o.null_gpu ? o.null_gpu : o.queues},
                  {"qd", o.qd},
                  {"bs", o.bs},
                  {"rw", std::string(perf::rw_name(o.rw))},
                  {"runtime_s", o.runtime_s},
                  {"timeout_ms", o.timeout_ms},
                  {"backoff_ns", o.backoff_ns},
                  {"emu_devices", o.emu.devices},
                  {"emu_backing", o.emu.backing},
                  {"emu_iops", o.emu.iops},
                  {"emu_bw", o.emu.bandwidth},
                  {"emu_workers", o.emu.workers},
                  {"gpus", o.gpu_list()}};
  j["threads"] = r.threads;
  j["queues"] = r.queues.size();
  j["seconds"] = r.seconds;
  j["ios"] = r.ios;
  j["iops"] = r.iops;
  j["bytes_per_s"] = r.bytes_per_s;
  j["gb_per_s"] = r.bytes_per_s / 1e9;
  j["errors"] = r.errors;
  j["timeouts"] = r.timeouts;
  j["spurious_completions"] = r.spurious;
  j["first_error"] = r.first_error_text;
  j["controller_counts_checked"] = r.controller_counts_checked;
  j["controller_counts_match"] = r.controller_counts_match;
  auto& pd = j["per_device_counts"] = nlohmann::ordered_json::array();
  for (auto& [a, b] : r.per_device_counts) pd.push_back({{"gpu_submitted", a}, {"controller_executed", b}});
  auto& qs = j["per_queue"] = nlohmann::ordered_json::array();
  for (auto& q : r.queues)
    qs.push_back({{"device", q.device},
                  {"gpu", q.gpu},
                  {"qid", q.qid},
                  {"rounds", q.rounds},
                  {"ios", q.ios},
                  {"iops", q.seconds > 0 ? double(q.ios) / q.seconds : 0.0},
                  {"errors", q.errors},
                  {"submitted", q.submitted},
                  {"completed", q.completed},
                  {"timeouts", q.timeouts},
                  {"spurious", q.spurious}});
  return j;
}

std::string to_text(const CudaRunResult& r) {
  const auto& o = r.opt;
  std::string s;
  s += fmt::format("gpu: {}\n", r.gpu);
  s += fmt::format("mode {}, {} device(s), {} queue(s) x {} threads = {} threads, bs {}, {}\n", r.mode,
                   r.devices.size(), r.queues.size(), o.qd, r.threads, o.bs, perf::rw_name(o.rw));
  if (o.gpus.size() > 1)
    s += fmt::format("GPUs {}: each its own queue pairs on every device\n", backends::format_gpu_list(o.gpus));
  s += fmt::format("{:.3f} s  {} IOPS  {:.2f} GB/s  {} I/Os  errors {}  timeouts {}  spurious {}\n", r.seconds,
                   report::human_count(r.iops), r.bytes_per_s / 1e9, r.ios, r.errors, r.timeouts, r.spurious);
  if (r.controller_counts_checked)
    s += fmt::format("controller cross-check: {}\n", r.controller_counts_match
                                                         ? "every submitted command executed exactly once"
                                                         : "MISMATCH between GPU submissions and controller counts");
  if (!r.first_error_text.empty()) s += "first error: " + r.first_error_text + "\n";
  s += "commit: " + r.commit + "\n";
  return s;
}

}  // namespace aisio::gpu
