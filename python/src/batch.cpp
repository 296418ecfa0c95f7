// read_files: many files through one Volume on several readers at once (each its own
// queue pair with qd chunks in flight), the way `aisio fil run` keeps every queue busy:
// threads take batches of files from a shared counter.
#include <fmt/format.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <atomic>
#include <thread>
#include <unordered_map>

#include "common/error.hpp"
#include "file.hpp"
#include "sinks.hpp"
#include "trace.hpp"

namespace aisio::py {

namespace pyb = pybind11;

namespace {

// Each file gets its own Storage, sized when the reader knows the file's size.
class ItemSink final : public io::FileSink {
 public:
  ItemSink(std::vector<Volume::Item>& items, bool gpu, int device) : items_(items), gpu_(gpu), device_(device) {}
  void begin(const io::FileTask& f, uint64_t size) override {
    auto& it = items_[f.id];
    try {
      it.data = std::make_shared<Storage>(size_t(size), gpu_, device_);
    } catch (const std::exception& e) {
      it.error = e.what();
    }
  }
  void data(const io::FileTask& f, uint64_t off, const uint8_t* p, size_t n) override {
    auto& it = items_[f.id];
    if (!it.error.empty() || !it.data) return;
    if (off + n > it.data->n) {
      it.error = f.rel + ": the file grew while it was read";
      return;
    }
    try {
      deposit(Dest{it.data->p, it.data->n, gpu_, device_}, off, p, n);
    } catch (const std::exception& e) {
      it.error = e.what();
    }
  }
  void end(const io::FileTask& f, const std::string& e) override {
    auto& it = items_[f.id];
    if (!e.empty() && it.error.empty()) it.error = e;
    if (!it.error.empty()) it.data.reset();
  }

 private:
  std::vector<Volume::Item>& items_;
  bool gpu_;
  int device_;
};

}  // namespace

void Volume::read_many(std::vector<Item>& items, uint32_t threads, bool gpu, int device) {
  IoTrace trace;
  std::vector<io::FileTask> tasks(items.size());
  for (size_t i = 0; i < items.size(); ++i) tasks[i] = {uint32_t(i), items[i].rel, 0};
  const uint32_t nt = std::clamp<uint32_t>(threads, 1, uint32_t(std::max<size_t>(items.size(), 1)));
  const size_t batch = 8;  // files a reader takes at a time: its qd chunks span several small files
  std::atomic<size_t> next{0};
  std::mutex mu;
  std::string fatal;
  auto work = [&] {
    try {
      auto r = lease();
      ItemSink sink(items, gpu, device);
      for (;;) {
        const size_t b = next.fetch_add(batch);
        if (b >= tasks.size()) break;
        r->read(std::span<const io::FileTask>(tasks.data() + b, std::min(batch, tasks.size() - b)), sink);
      }
      give_back(std::move(r));
    } catch (const std::exception& e) {
      std::lock_guard lk(mu);
      if (fatal.empty()) fatal = e.what();
      next.store(tasks.size());
    }
  };
  std::vector<std::thread> th;
  for (uint32_t t = 1; t < nt; ++t) th.emplace_back(work);
  work();
  for (auto& t : th) t.join();
  if (!fatal.empty()) throw Error(Errc::io, "read_files: a reader failed: " + fatal);
}

void register_batch(pyb::module_& m) {
  m.def("_read_many", [](Volume& v, const std::vector<std::string>& rels, uint32_t threads, const std::string& dest,
                         int device) {
    if (dest != "host" && dest != "gpu") throw Error(Errc::invalid_argument, "dest='" + dest + "': use 'host' or 'gpu'");
    const bool gpu = dest == "gpu";
    if (gpu) gpu::require(device);  // fails early, and clearly, without CUDA
    std::vector<Volume::Item> items(rels.size());
    for (size_t i = 0; i < rels.size(); ++i) items[i].rel = rels[i];
    {
      pyb::gil_scoped_release nogil;
      v.read_many(items, threads, gpu, device);
    }
    pyb::list out;
    for (auto& it : items) {
      if (it.data) out.append(pyb::make_tuple(std::make_shared<Array>(it.data, it.rel), pyb::none()));
      else out.append(pyb::make_tuple(pyb::none(), it.error));
    }
    return out;
  }, pyb::arg("volume"), pyb::arg("rels"), pyb::arg("threads") = 4, pyb::arg("dest") = "host",
     pyb::arg("device") = 0, "Internal: read_files' engine; [(Array, None) | (None, error)] in order.");
}

}  // namespace aisio::py
