// The GPU paths of `aisio fil run`. See fil_gpu.hpp.
#include <fmt/format.h>
#include <sys/resource.h>
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <exception>
#include <filesystem>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <optional>

#include "backends/gpus.hpp"
#include "common/cpu_time.hpp"
#include "common/error.hpp"
#include "extents/translate.hpp"
#include "fil/manifest.hpp"
#include "gpu/cuda.hpp"
#include "gpu/cuda_run.hpp"
#include "gpu/cufile_queue.hpp"
#include "gpu/device_queue.hpp"
#include "gpu/fil_gpu.hpp"
#include "gpu/kernels.hpp"
#include "gpu/unvme_gpu_queue.hpp"
#include "io/extent_source.hpp"
#include "nvme/controller.hpp"

namespace aisio::gpu {

namespace {

using kern::FileCheck;
using kern::FileDesc;
using kern::kHasKey;
using kern::kSparse;
using Clock = std::chrono::steady_clock;

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// What every GPU slot of one path shares (set up once, on the calling thread).
struct Shared {
  fil::Session& s;
  std::string name;
  const fil::RunOptions& o;
  const fil::Manifest& m;
  uint64_t cap = 0;  // staging bytes per slot
  uint32_t nsid = 1, lba = 512, qd = 1, maxq = 2;
  size_t io_size = 256 << 10;
  std::shared_ptr<io::ExtentSource> src;
  std::shared_ptr<CuFile> cufile;
  std::mutex resolve_mu;  // the extent source is not shared between threads unlocked
  // The path's result, which the slots' verdicts and timings go into (under mu).
  std::mutex mu;
  fil::PathResult r;
  double io_s = 0, verify_s = 0;
  uint32_t batches = 0;
  uint64_t host_hashed = 0;
};

// A file in the current batch.
struct Placed {
  uint32_t mi;        // manifest index
  uint64_t base;      // in staging
  uint64_t size;      // resolved size (what was read)
  std::string error;  // resolve / I/O error
};

// One GPU slot's share of a path: its files, staging buffer and backend queue Q
// (UnvmeGpuQueue, DeviceQueue, CufileQueue), read batch by batch and verified.
template <class Q>
class SlotRun {
  static constexpr bool kWholeFiles = std::is_same_v<Q, CufileQueue>;

 public:
  // A request of this workload: which placed file it fills.
  struct Read : Q::Request {
    SlotRun* self = nullptr;
    uint32_t file = 0;
  };
  struct Done {
    static void done(typename Q::Request& r, const typename Q::Result& res) {
      auto& x = static_cast<Read&>(r);
      x.self->completed(x, res);
    }
  };

  // Allocates the staging buffer and opens the queue on `gpu` (calling thread).
  SlotRun(Shared& sh, int gpu) : sh_(sh), gpu_(gpu) {
    use_device(gpu);
    if constexpr (kWholeFiles) {
      plain_ = dev_alloc<uint8_t>(sh.cap);
      staging_ptr_ = plain_.get();
      sh.cufile->register_buffer(staging_ptr_, sh.cap);
      q_.emplace(sh.cufile, staging_ptr_);
      describe_ = "cuFileRead of each file into GPU memory; " + sh.cufile->describe();
    } else {
      g_ = GpuController::open(sh.s.controller(), gpu);
      staging_ = g_->data_heap()->alloc(sh.cap, kGpuPage);
      staging_ptr_ = staging_.data();
      const auto& acc = sh.s.access();
      if constexpr (std::is_same_v<Q, DeviceQueue>) {
        q_.emplace(g_, std::max<uint32_t>(1, sh.o.threads), sh.qd, sh.nsid, staging_);
        describe_ = fmt::format("GPU-initiated reads: {} queue(s) x {} threads on {}, {} KiB commands; {}",
                                q_->queues(), sh.qd, acc.describe, sh.io_size >> 10, g_->describe());
      } else {
        q_.emplace(acc, std::min<uint32_t>(sh.qd + 1, sh.maxq), staging_);
        describe_ = fmt::format("CPU-initiated reads into GPU memory (P2P): 1 queue pair, qd {}, {} KiB commands, on {}",
                                q_->capacity(), sh.io_size >> 10, acc.describe);
      }
      describe_ += "; extents: " + sh.src->describe();
    }
  }
  ~SlotRun() {
    q_.reset();  // queues before the memory they point into
    staging_.reset();
    g_.reset();
    if (plain_) sh_.cufile->deregister_buffer(plain_.get());  // before plain_ is freed
  }
  SlotRun(const SlotRun&) = delete;
  SlotRun& operator=(const SlotRun&) = delete;

  const std::string& describe() const { return describe_; }

  // Reads and verifies the manifest files `files` (any thread; makes its GPU current).
  void run(const std::vector<uint32_t>& files) {
    use_device(gpu_);
    double c0 = cpu_seconds(RUSAGE_THREAD);
    for (uint32_t i : files) add(i);
    flush();
    std::lock_guard lk(sh_.mu);
    sh_.r.stats += st_;
    sh_.r.thread_cpu_s += cpu_seconds(RUSAGE_THREAD) - c0;
  }

 private:
  // Places file i in the batch (flushing first when it does not fit) and plans its reads.
  void add(uint32_t i) {
    const auto& mf = sh_.m.files[i];
    uint64_t region = (std::max<uint64_t>(mf.size, 1) + 8191) & ~uint64_t(4095);  // room for a tail LBA
    if (used_ + region > sh_.cap) flush();
    Placed p{i, used_, mf.size, {}};
    used_ += region;
    const uint32_t k = uint32_t(placed_.size());
    if constexpr (kWholeFiles) {
      Read rd;
      rd.path = (std::filesystem::path(sh_.s.dir()) / mf.path).string();
      rd.len = mf.size + 1;  // one byte more: a longer file shows
      rd.dst = p.base;
      rd.file = k;
      reads_.push_back(std::move(rd));
    } else {
      plan(p, k);
    }
    placed_.push_back(std::move(p));
  }

  // The file's extents as whole-LBA reads in place (holes zero-filled instead).
  void plan(Placed& p, uint32_t k) {
    const auto& mf = sh_.m.files[p.mi];
    auto t0 = Clock::now();
    const size_t first = reads_.size();
    try {
      io::ResolvedFile rf;
      {
        std::lock_guard lk(sh_.resolve_mu);
        rf = sh_.src->resolve(mf.path);
      }
      p.size = rf.size;
      extents::TranslateOptions topt;
      topt.lba_size = sh_.lba;
      topt.device_offset = sh_.src->device_offset();
      topt.max_nlb = uint32_t(sh_.io_size / sh_.lba);
      topt.file_size = rf.size;
      for (const auto& run : extents::translate(rf.extents, 0, rf.size, topt)) {
        if (run.zero_fill) {
          zero_.push_back({p.base + run.file_offset, run.length});
          continue;
        }
        // A read lands whole LBAs at base + file_offset - skip: only LBA-aligned runs (and
        // a partial last one at EOF) are placed without overlapping their neighbours.
        bool last = run.file_offset + run.length >= rf.size;
        if (run.skip || (!last && run.length % sh_.lba))
          throw Error(Errc::not_supported, "an extent not aligned to the LBA size (the GPU paths read whole LBAs "
                                           "in place)");
        Read rd;
        rd.cmd = ListCommand{uint64_t(run.slba), uint32_t(run.nlb), uint32_t(run.nlb * sh_.lba), p.base + run.file_offset};
        rd.file = k;
        reads_.push_back(rd);
      }
    } catch (const std::exception& e) {
      p.error = fmt::format("resolve/plan {}: {}", mf.path, e.what());
      reads_.resize(first);
    }
    st_.resolve_s += since(t0);
  }

  // ---- completions: what a good result is per backend ----
  void completed(Read& x, const nvme::Completion& c) {
    count(x.cmd.len);
    if (!c.ok()) fail(x.file, "unvme-gpu read: " + c.describe());
  }
  void completed(Read& x, uint32_t status) {
    count(x.cmd.len);
    if (status != st::kOk)
      fail(x.file, fmt::format("GPU read of LBA {} (+{}): {}", x.cmd.slba, x.cmd.nlb, status_text(status)));
  }
  void completed(Read& x, const CufileResult& res) {
    auto& p = placed_[x.file];
    if (res.error.empty()) p.size = res.bytes;
    else fail(x.file, res.error);
    count(res.bytes);
  }
  void count(uint64_t bytes) {
    ++completions_;
    ++st_.device_reads;
    st_.device_bytes += bytes;
  }
  void fail(uint32_t k, std::string why) {
    auto& p = placed_[k];
    if (p.error.empty()) p.error = std::move(why);
  }

  // Every read of the batch through the backend queue: fill it, flush, reap, until done.
  void read_batch() {
    auto t0 = Clock::now();
    for (auto& rd : reads_) rd.self = this;
    size_t next = 0;
    completions_ = 0;
    Q& q = *q_;
    while (completions_ < reads_.size()) {
      while (next < reads_.size() && q.in_flight() < q.capacity()) {
        if (!q.template submit<Done>(reads_[next])) break;
        ++next;
      }
      q.flush();
      q.template reap<Done>();
    }
    std::lock_guard lk(sh_.mu);
    sh_.io_s += since(t0);
  }

  void flush() {
    if (placed_.empty()) return;
    // Poison the batch, then zero the holes: a byte no read wrote shows as a mismatch.
    AISIO_CUDA(cudaMemset(staging_ptr_, 0xA5, used_));
    for (auto& z : zero_) {
      AISIO_CUDA(cudaMemset(staging_ptr_ + z.first, 0, z.second));
      st_.zero_fill_bytes += z.second;
    }
    AISIO_CUDA(cudaDeviceSynchronize());
    read_batch();
    verify_batch();
    placed_.clear();
    reads_.clear();
    zero_.clear();
    used_ = 0;
  }

  void verify_batch() {
    auto t0 = Clock::now();
    std::vector<FileDesc> fd(placed_.size());
    std::vector<uint64_t> segs;
    for (size_t i = 0; i < placed_.size(); ++i) {
      const auto& p = placed_[i];
      const auto& mf = sh_.m.files[p.mi];
      FileDesc& d = fd[i];
      d = FileDesc{p.base, mf.size, mf.key.value_or(0), uint32_t(segs.size() / 2), 0, 0, 0};
      if (mf.key && p.error.empty() && p.size == mf.size) d.flags |= kHasKey;
      if (mf.sparse) {
        d.flags |= kSparse;
        for (auto& s : mf.segments) {
          segs.push_back(s.off);
          segs.push_back(s.len);
        }
        d.seg_count = uint32_t(mf.segments.size());
      }
    }
    if (segs.empty()) segs = {0, 0};
    std::vector<FileCheck> init(fd.size(), FileCheck{0, ~0ull});
    DevArray<FileDesc> dfd(fd.size(), fd.data());
    DevArray<uint64_t> dsegs(segs.size(), segs.data());
    DevArray<FileCheck> dout(fd.size(), init.data());
    AISIO_CUDA(kern::launch_verify(staging_ptr_, dfd.p, dsegs.p, dout.p, uint32_t(fd.size()), nullptr));
    std::vector<FileCheck> out = dout.read();
    std::lock_guard lk(sh_.mu);
    for (size_t i = 0; i < placed_.size(); ++i) judge(placed_[i], out[i]);
    st_.files += placed_.size();
    ++sh_.batches;
    sh_.verify_s += since(t0);
  }

  // One file's verdict into the path's result (under sh_.mu).
  void judge(const Placed& p, const FileCheck& chk) {
    const auto& mf = sh_.m.files[p.mi];
    auto& r = sh_.r;
    ++r.files;
    r.bytes += mf.size;
    auto problem = [&](const std::string& what, const std::string& detail, int64_t off) {
      if (r.problems.size() < sh_.o.max_report) r.problems.push_back({mf.path, what, detail, off});
    };
    if (!p.error.empty()) {
      ++r.errors;
      return problem("I/O error", p.error, -1);
    }
    if (!sh_.o.verify) {
      ++r.verified_ok;
      return;
    }
    if (p.size != mf.size) {
      ++r.mismatches;
      return problem("size mismatch", fmt::format("read {} bytes, manifest says {}", p.size, mf.size), -1);
    }
    if (!mf.key) {
      // No content key: hash on the host (after a copy back) against the manifest.
      std::vector<uint8_t> h(mf.size);
      if (mf.size) AISIO_CUDA(cudaMemcpy(h.data(), staging_ptr_ + p.base, mf.size, cudaMemcpyDeviceToHost));
      ++sh_.host_hashed;
      if (XXH3_64bits(h.data(), h.size()) == mf.xxh3) {
        ++r.verified_ok;
      } else {
        ++r.mismatches;
        problem("hash mismatch", "XXH3-64 on the host differs (no content key for a GPU check)", -1);
      }
      return;
    }
    if (chk.bad_words == 0) {
      ++r.verified_ok;
    } else {
      ++r.mismatches;
      problem("content mismatch",
              fmt::format("{} bad 8-byte words (GPU check); first difference at byte {}", chk.bad_words, chk.first),
              int64_t(chk.first));
    }
  }

  Shared& sh_;
  int gpu_;
  std::string describe_;
  std::shared_ptr<GpuController> g_;
  DmaBuffer staging_;
  DevPtr<uint8_t> plain_;  // cufile: cudaMalloc'ed staging
  uint8_t* staging_ptr_ = nullptr;
  std::optional<Q> q_;  // after the staging: it goes first
  uint64_t used_ = 0;
  std::vector<Placed> placed_;
  std::vector<Read> reads_;
  std::vector<std::pair<uint64_t, uint64_t>> zero_;
  size_t completions_ = 0;
  io::ReadStats st_;  // this slot's device reads, zero fill, resolve time
};

// What every path needs before its slots: the controller's limits or cuFile.
void prepare(Shared& sh) {
  uint64_t largest = 0;
  for (auto& f : sh.m.files) largest = std::max(largest, f.size);
  sh.cap = std::max<uint64_t>(256ull << 20, (largest + 8191) & ~uint64_t(4095));
  if (sh.name == "cufile") {
    if (!sh.s.local())
      throw Error(Errc::not_supported, "cufile needs the data set mounted here (" + sh.s.dir() + " is not a directory)");
    sh.cufile = CuFile::open();
    return;
  }
  auto ctrl = sh.s.controller();
  if (!ctrl) throw Error(Errc::not_supported, sh.name + " needs a controller of this process (not --via homid)");
  const auto& acc = sh.s.access();
  sh.nsid = acc.nsid;
  sh.lba = acc.lba_size;
  sh.src = sh.s.extent_source();
  sh.qd = std::max<uint32_t>(1, sh.o.engine.qd);
  size_t mdts = ctrl->mdts_bytes() ? ctrl->mdts_bytes() : (size_t(1) << 20);
  sh.io_size = std::min<size_t>(std::max<size_t>(sh.o.engine.io_size, sh.lba), mdts);
  sh.io_size = std::min<size_t>(sh.io_size, size_t(ctrl->page_size() / 8) * ctrl->page_size());  // one PRP list page
  sh.maxq = ctrl->cap().mqes() + 1;
  if (sh.name == "gpu") {
    if (sh.qd + 1 > sh.maxq)
      throw Error(Errc::invalid_argument, fmt::format("--qd {} exceeds the controller's queues", sh.qd));
    if (sh.qd > 1024) throw Error(Errc::invalid_argument, "--qd above 1024 threads per queue");
  }
}

template <class Q>
fil::PathResult run_slots(Shared& sh, const std::vector<int>& gpus) {
  fil::PathResult& r = sh.r;
  r.path = sh.name;
  std::vector<std::unique_ptr<SlotRun<Q>>> slots;
  try {
    for (int g : gpus) slots.push_back(std::make_unique<SlotRun<Q>>(sh, g));
  } catch (const Error& e) {
    if (!fil::skip_path(r, e)) throw;
    return r;
  }
  std::vector<uint64_t> sizes;
  for (const auto& f : sh.m.files) sizes.push_back(f.size);
  auto lists = backends::spread_files(sizes, slots.size());
  r.describe = slots[0]->describe();
  if (slots.size() > 1)
    r.describe += fmt::format("; {} GPU slots (--gpus {}), files spread by bytes, each its own queues and buffer",
                              slots.size(), backends::format_gpu_list(gpus));
  r.cache = fil::drop_cache(sh.o.drop, sh.m, sh.o);
  double p0 = cpu_seconds(RUSAGE_SELF);
  auto t0 = Clock::now();
  // One host thread per GPU; the slots of one GPU one after another on it. Slots of one
  // GPU share its context: a cudaFree (device-wide sync) in one while the other's reads
  // wait for the in-process controller's CUDA copies could stall both.
  std::map<int, std::vector<size_t>> by_gpu;
  for (size_t i = 0; i < slots.size(); ++i) by_gpu[gpus[i]].push_back(i);
  auto run_gpu = [&](const std::vector<size_t>& mine) {
    for (size_t i : mine) slots[i]->run(lists[i]);
  };
  if (by_gpu.size() == 1) {
    run_gpu(by_gpu.begin()->second);
  } else {
    std::vector<std::future<void>> runs;
    for (const auto& [g, mine] : by_gpu) runs.push_back(std::async(std::launch::async, run_gpu, std::cref(mine)));
    for (auto& f : runs) f.get();  // rethrows a thread's failure; ~future waits for the others
  }
  r.wall_s = since(t0);
  r.process_cpu_s = cpu_seconds(RUSAGE_SELF) - p0;
  r.stats.bytes = r.bytes;
  r.ran = true;
  if (sh.host_hashed)
    r.describe += fmt::format("; {} file(s) without a content key hashed on the host", sh.host_hashed);
  r.describe += fmt::format("; I/O {:.3f} s, GPU verify {:.3f} s, {} batch(es)", sh.io_s, sh.verify_s, sh.batches);
  return r;
}

}  // namespace

fil::PathResult run_fil_path(fil::Session& s, const std::string& name, const fil::RunOptions& o,
                             const std::vector<int>& gpus) {
  fil::PathResult r;
  r.path = name;
  std::string why;
  if (!device_present(&why)) {
    r.skipped = "skipped: " + why;
    return r;
  }
  if (gpus.empty()) throw Error(Errc::invalid_argument, "--gpus: an empty list");
  Shared sh{s, name, o, s.manifest()};
  try {
    prepare(sh);
  } catch (const Error& e) {
    if (!fil::skip_path(r, e)) throw;
    return r;
  }
  if (name == "cufile") return run_slots<CufileQueue>(sh, gpus);
  if (name == "gpu") return run_slots<DeviceQueue>(sh, gpus);
  if (name == "unvme-gpu") return run_slots<UnvmeGpuQueue>(sh, gpus);
  throw Error(Errc::invalid_argument, "no GPU path '" + name + "' (unvme-gpu, gpu, cufile)");
}

}  // namespace aisio::gpu
