// homid end to end against software controllers: clients (threads with their own
// connections, and child processes) allocate queues, do verified I/O, die, misbehave.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <thread>

#include "common/error.hpp"
#include "common/expect_error.hpp"
#include "extents/device.hpp"
#include "extents/fiemap.hpp"
#include "homi/client.hpp"
#include "homi/daemon.hpp"
#include "homi/log.hpp"

using aisio::test::expect_error;

using namespace aisio;
using namespace aisio::homi;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  TempDir() {
    char t[] = "/tmp/homi-test-XXXXXX";
    path = mkdtemp(t);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string path;
};

struct Opts {
  uint16_t max_io_queues = 16;
  uint32_t per_client = 8;
  uint32_t total = 64;
  std::string block_device;  // backing of namespace 1 for extents
};

DaemonConfig make_config(const std::string& dir, const Opts& o = {}) {
  DaemonConfig cfg;
  cfg.socket = dir + "/homid.sock";
  cfg.socket_mode = 0600;
  ControllerConfig c;
  c.name = "soft0";
  c.kind = ControllerConfig::Kind::soft;
  c.soft.max_io_queues = o.max_io_queues;
  c.io_queues = o.max_io_queues;
  c.soft.namespaces = {emu::NamespaceConfig{64ull << 20, 512, emu::Backing::ram, ""}};
  c.soft.idle = emu::IdlePolicy{20, 10, 200};
  c.backings = {NamespaceBacking{1, o.block_device, ""}};
  cfg.controllers.push_back(c);
  cfg.policy.log_level = "warn";
  cfg.policy.limits.max_queues_per_client = o.per_client;
  cfg.policy.limits.max_queues_total = o.total;
  cfg.policy.limits.max_dma_bytes_per_client = 256ull << 20;
  AccessRule r;
  r.name = "tests";
  r.any = true;
  r.admin = true;
  r.dataset_roots = {dir};
  cfg.policy.rules.push_back(r);
  return cfg;
}

struct Rig {
  explicit Rig(const Opts& o = {}) : cfg(make_config(dir.path, o)), daemon(cfg) { daemon.start(); }
  std::shared_ptr<homic::Session> session(const std::string& name = "test") {
    homic::ConnectOptions co;
    co.name = name;
    return homic::Session::open(homic::Client::connect(cfg.socket, co), "soft0");
  }
  TempDir dir;
  DaemonConfig cfg;
  Daemon daemon;
};

uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Writes `count` x nlb blocks at slba with a pattern, reads them back, compares.
void verified_io(nvme::QueuePair& qp, DmaHeap& heap, uint64_t slba, uint32_t count, uint64_t seed, uint32_t nlb = 8) {
  size_t bytes = size_t(nlb) * 512;
  DmaBuffer w = heap.alloc(bytes), r = heap.alloc(bytes);
  for (uint32_t i = 0; i < count; ++i) {
    for (size_t k = 0; k < bytes; k += 8) {
      uint64_t v = mix(seed * 1000003 + i * 4096 + k);
      std::memcpy(w.data() + k, &v, 8);
    }
    auto c = qp.write(1, slba + uint64_t(i) * nlb, nlb, w);
    ASSERT_TRUE(c.ok()) << c.describe();
    std::memset(r.data(), 0, bytes);
    c = qp.read(1, slba + uint64_t(i) * nlb, nlb, r);
    ASSERT_TRUE(c.ok()) << c.describe();
    ASSERT_EQ(std::memcmp(w.data(), r.data(), bytes), 0) << "slba " << slba + i * nlb;
  }
}

// Daemon::reload hands the policy to the service thread; wait (bounded) until that
// thread has applied it instead of sleeping for a guess.
void reload_and_wait(Daemon& d, Policy p) {
  const uint64_t before = d.snapshot().policies_applied;
  d.reload(std::move(p));
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (d.snapshot().policies_applied == before) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "reload not applied within 10 s";
    std::this_thread::sleep_for(1ms);
  }
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// A child process running homic-verify; its stdout is a pipe.
struct Child {
  pid_t pid = -1;
  int out = -1;
  Child() = default;
  Child(Child&& o) noexcept : pid(o.pid), out(o.out) {
    o.pid = -1;
    o.out = -1;
  }
  Child& operator=(Child&&) = delete;
  ~Child() {
    if (pid > 0) {
      kill(pid, SIGKILL);
      waitpid(pid, nullptr, 0);
    }
    if (out >= 0) close(out);
  }
  std::string read_line(std::chrono::milliseconds limit) {
    std::string s;
    auto end = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < end) {
      pollfd p{out, POLLIN, 0};
      if (poll(&p, 1, 50) <= 0) continue;
      char ch;
      if (read(out, &ch, 1) != 1) break;
      if (ch == '\n') return s;
      s += ch;
    }
    return s;
  }
};

Child spawn(const std::vector<std::string>& args) {
  int p[2];
  EXPECT_EQ(pipe2(p, O_CLOEXEC), 0);
  Child c;
  c.pid = fork();
  if (c.pid == 0) {
    dup2(p[1], 1);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(p[1]);
  c.out = p[0];
  return c;
}

}  // namespace

class Homi : public ::testing::Test {
 protected:
  void SetUp() override { set_log_level(Level::warn); }
};

TEST_F(Homi, HelloListIdentify) {
  Rig rig;
  auto client = homic::Client::connect(rig.cfg.socket);
  EXPECT_EQ(client->hello().instance, rig.daemon.instance());
  EXPECT_EQ(client->hello().uid, getuid());
  EXPECT_EQ(client->hello().pid, uint32_t(getpid()));
  EXPECT_EQ(client->hello().max_queues, 8u);
  auto list = client->controllers();
  ASSERT_EQ(list.size(), 1u);
  const auto& c = list[0];
  EXPECT_EQ(c.name, "soft0");
  EXPECT_EQ(c.kind, uint8_t(wire::Kind::soft));
  EXPECT_EQ(c.dstrd, 10);
  EXPECT_TRUE(c.flags & wire::kCtrlDoorbellsIsolated);
  EXPECT_EQ(c.queue_limit, 16);
  ASSERT_EQ(c.namespaces.size(), 1u);
  EXPECT_EQ(c.namespaces[0].lba_size, 512u);
  EXPECT_EQ(c.namespaces[0].nsze, (64ull << 20) / 512);
  auto id = client->identify(0, 1);
  ASSERT_EQ(id.size(), 4096u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(id.data()) + 4, 12), "AISIOEMU0001");
  auto idns = client->identify(0, 0, 1);
  uint64_t nsze;
  std::memcpy(&nsze, idns.data(), 8);
  EXPECT_EQ(nsze, c.namespaces[0].nsze);
  expect_error([&] { client->identify(0, 0, 9); }, Errc::invalid_argument, "namespace 9 is not active");
  EXPECT_NE(error_of([&] { client->identify(3, 1); }).find("no controller 3"), std::string::npos);
}

TEST_F(Homi, SecondDaemonOnTheSameSocketIsRefused) {
  Rig rig;
  auto s = rig.session();
  auto qp = s->create_queue_pair({.depth = 8});
  Daemon second(rig.cfg);
  std::string err = error_of([&] { second.start(); });
  EXPECT_NE(err.find("already listening"), std::string::npos) << err;
  verified_io(*qp, *s->dma(), 0, 2, 5);  // the first daemon and its client are undisturbed
  EXPECT_TRUE(s->client()->connected());
}

TEST_F(Homi, QueuePairThroughHomidDoesVerifiedIo) {
  Rig rig;
  auto s = rig.session();
  {
    auto qp = s->create_queue_pair({.depth = 64}, 1);
    EXPECT_GE(qp->qid(), 1);
    auto st = s->client()->stats();
    ASSERT_EQ(st.queues.size(), 1u);
    EXPECT_EQ(st.queues[0].qid, qp->qid());
    EXPECT_EQ(st.queues[0].depth, 64u);
    EXPECT_EQ(st.clients.size(), 1u);
    EXPECT_GE(st.clients[0].regions, 1u);
    verified_io(*qp, *s->dma(), 0, 32, 1);
    // Asynchronous batch through the same queue.
    DmaBuffer buf = s->dma()->alloc(64 * 4096);
    std::atomic<int> done{0};
    auto cb = [](void* a, nvme::Completion c) {
      EXPECT_TRUE(c.ok());
      ++*static_cast<std::atomic<int>*>(a);
    };
    for (int i = 0; i < 60; ++i) ASSERT_TRUE(qp->submit_io(nvme::nvm::READ, 1, i * 8, 8, buf, i * 4096, cb, &done));
    qp->ring();
    while (done < 60) qp->poll();
    auto st2 = s->client()->stats();
    ASSERT_EQ(st2.controllers.size(), 1u);
    EXPECT_EQ(st2.controllers[0].known, 1);
    EXPECT_GE(st2.controllers[0].io_commands, 124u);
  }
  // Destroying the queue pair released it.
  EXPECT_EQ(s->client()->stats().queues.size(), 0u);
  EXPECT_EQ(rig.daemon.snapshot().queues, 0u);
}

TEST_F(Homi, DoorbellsAreIsolatedPerQueue) {
  Rig rig;
  auto client = homic::Client::connect(rig.cfg.socket);
  // Register memory by hand and place two queues in it.
  int mfd = memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  ASSERT_GE(mfd, 0);
  ASSERT_EQ(ftruncate(mfd, 1 << 20), 0);
  // Unsealed memfds are refused.
  EXPECT_NE(error_of([&] { client->register_dma(0, mfd, 1 << 20); }).find("F_SEAL_SHRINK"), std::string::npos);
  ASSERT_EQ(fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
  auto reg = client->register_dma(0, mfd, 1 << 20);
  close(mfd);
  ASSERT_EQ(reg.bus.size(), 1u);
  uint64_t base = reg.bus[0];
  auto g1 = client->alloc_queue(wire::AllocQueue{0, 16, 1, 0, base, base + 4096});
  auto g2 = client->alloc_queue(wire::AllocQueue{0, 16, 1, 0, base + 8192, base + 12288});
  for (auto* g : {&g1, &g2}) {
    EXPECT_TRUE(g->ok.flags & wire::kGrantIsolated);
    EXPECT_EQ(g->ok.map_length, 8192u);
    struct stat st {};
    ASSERT_EQ(fstat(g->fd.get(), &st), 0);
    EXPECT_EQ(st.st_size, 8192) << "the client's descriptor reaches only its own two doorbell pages";
  }
  EXPECT_NE(g1.ok.qid, g2.ok.qid);
  // Queue memory outside the client's registered memory is refused.
  EXPECT_NE(error_of([&] { client->alloc_queue(wire::AllocQueue{0, 16, 1, 0, base + (2 << 20), base}); })
                .find("not inside memory this client registered"),
            std::string::npos);
  EXPECT_NE(error_of([&] { client->alloc_queue(wire::AllocQueue{0, 16, 1, wire::kAllocExternalMemory, 0x1000, 0x2000}); })
                .find("external_queue_memory"),
            std::string::npos);
  // A region holding a live queue cannot be unregistered.
  EXPECT_NE(error_of([&] { client->unregister_dma(0, reg.region); }).find("release the queue first"), std::string::npos);
  // Keep a mapping of queue 1's doorbells, release it, write into the stale mapping:
  // the device no longer reads those pages.
  void* stale = mmap(nullptr, 8192, PROT_READ | PROT_WRITE, MAP_SHARED, g1.fd.get(), 0);
  ASSERT_NE(stale, MAP_FAILED);
  client->release_queue(0, g1.ok.qid);
  static_cast<volatile uint32_t*>(stale)[0] = 5;
  auto before = client->stats().controllers.at(0).io_commands;
  // A new owner of the same queue id works normally through a session.
  auto s = homic::Session::open(client, "soft0");
  auto qp = s->create_queue_pair({.depth = 16});
  verified_io(*qp, *s->dma(), 4096, 4, 7);
  EXPECT_EQ(client->stats().controllers.at(0).io_commands, before + 8);
  munmap(stale, 8192);
  client->release_queue(0, g2.ok.qid);
  client->unregister_dma(0, reg.region);
}

// Several GPUs: a queue granted for a GPU carries its index in the grant and in the
// daemon's accounting; the list [0, 0] (two slots of one GPU) gives two queues on GPU 0.
TEST_F(Homi, QueuesAreAccountedPerGpu) {
  Rig rig;
  auto client = homic::Client::connect(rig.cfg.socket);
  Fd mfd(memfd_create("t", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  ASSERT_TRUE(mfd.get() >= 0 && ftruncate(mfd.get(), 1 << 20) == 0 && fcntl(mfd.get(), F_ADD_SEALS, F_SEAL_SHRINK) == 0);
  auto reg = client->register_dma(0, mfd.get(), 1 << 20);
  const uint64_t base = reg.bus[0];
  auto alloc = [&](int slot, int gpu) {
    wire::AllocQueue r{0, 16, 1, 0, base + uint64_t(slot) * 8192, base + uint64_t(slot) * 8192 + 4096};
    if (gpu >= 0) {
      r.flags = wire::kAllocGpu;
      r.gpu = uint32_t(gpu);
    }
    return client->alloc_queue(r);
  };
  std::vector<int> gpus = {0, 0, 3, -1};  // --gpus 0,0 and a third GPU; one queue without
  std::vector<homic::Client::QueueGrant> grants;
  for (size_t i = 0; i < gpus.size(); ++i) grants.push_back(alloc(int(i), gpus[i]));
  for (size_t i = 0; i < gpus.size(); ++i) {
    EXPECT_EQ(bool(grants[i].ok.flags & wire::kGrantGpu), gpus[i] >= 0) << i;
    if (gpus[i] >= 0) EXPECT_EQ(grants[i].ok.gpu, uint32_t(gpus[i])) << i;
  }
  auto st = client->stats();
  ASSERT_EQ(st.queues.size(), gpus.size());
  std::map<uint32_t, int> per_gpu;
  int without = 0;
  for (auto& q : st.queues) {
    if (q.flags & wire::kAllocGpu) ++per_gpu[q.gpu];
    else ++without;
  }
  EXPECT_EQ(per_gpu, (std::map<uint32_t, int>{{0, 2}, {3, 1}}));
  EXPECT_EQ(without, 1);
  for (auto& g : grants) client->release_queue(0, g.ok.qid);
  EXPECT_TRUE(client->stats().queues.empty());
  client->unregister_dma(0, reg.region);
}

TEST_F(Homi, SixteenClientsAllocateFreeAndVerifyConcurrently) {
  Opts o;
  o.max_io_queues = 24;  // fewer than 16 clients x 2 queues: they contend and retry
  o.per_client = 2;
  Rig rig(o);
  constexpr int N = 16;
  std::atomic<int> failures{0}, retries{0};
  std::vector<std::string> errors(N);
  std::vector<std::thread> threads;
  for (int t = 0; t < N; ++t) {
    threads.emplace_back([&, t] {
      try {
        auto s = rig.session("client" + std::to_string(t));
        for (int round = 0; round < 3; ++round) {
          std::vector<std::unique_ptr<nvme::QueuePair>> qps;
          while (qps.size() < 2) {
            try {
              qps.push_back(s->create_queue_pair({.depth = 16}, 1));
            } catch (const Error& e) {
              if (e.code() != Errc::no_memory) throw;
              ++retries;  // the controller's queues are all taken: wait for someone to free one
              qps.clear();
              std::this_thread::sleep_for(std::chrono::milliseconds(1 + t % 5));
            }
          }
          for (size_t q = 0; q < qps.size(); ++q) {
            uint64_t slba = (uint64_t(t) * 2 + q) * 2048 + round * 256;
            verified_io(*qps[q], *s->dma(), slba, 4, t * 100 + round * 10 + q);
            if (::testing::Test::HasFailure()) throw Error(Errc::io, "verification failed");
          }
        }
      } catch (const std::exception& e) {
        errors[t] = e.what();
        ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < N; ++t) EXPECT_EQ(errors[t], "") << "client " << t;
  EXPECT_EQ(failures, 0);
  auto snap = rig.daemon.snapshot();
  EXPECT_EQ(snap.queues, 0u);
  EXPECT_GE(snap.accepted, uint64_t(N));
  RecordProperty("allocation_retries", retries.load());
}

TEST_F(Homi, KilledClientsQueuesAreReclaimedWithinASecond) {
  Opts o;
  o.max_io_queues = 4;
  o.per_client = 4;
  Rig rig(o);
  Child child = spawn({HOMIC_VERIFY, "--socket", rig.cfg.socket, "--controller", "soft0", "--queues", "4",
                       "--depth", "16", "--hold"});
  std::string line = child.read_line(20s);
  ASSERT_EQ(line.rfind("READY", 0), 0u) << "homic-verify said: " << line;
  EXPECT_EQ(rig.daemon.snapshot().queues, 4u);

  auto s = rig.session("survivor");
  std::string err = error_of([&] { s->create_queue_pair({.depth = 16}); });
  EXPECT_NE(err.find("queue budget exhausted"), std::string::npos) << err;

  ASSERT_EQ(kill(child.pid, SIGKILL), 0);
  auto t0 = std::chrono::steady_clock::now();
  std::unique_ptr<nvme::QueuePair> qp;
  while (!qp) {
    try {
      qp = s->create_queue_pair({.depth = 16});
    } catch (const Error& e) {
      ASSERT_EQ(e.code(), Errc::no_memory) << e.what();
      ASSERT_LT(std::chrono::steady_clock::now() - t0, 1s) << "queues of the killed client not reclaimed";
      std::this_thread::sleep_for(1ms);
    }
  }
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_LT(took, 1s);
  RecordProperty("reclaim_us", int(std::chrono::duration_cast<std::chrono::microseconds>(took).count()));
  waitpid(child.pid, nullptr, 0);
  child.pid = -1;
  EXPECT_GE(rig.daemon.snapshot().reclaimed_queues, 4u);
  verified_io(*qp, *s->dma(), 100000, 8, 99);
  // And the other three are free again too.
  std::vector<std::unique_ptr<nvme::QueuePair>> more;
  for (int i = 0; i < 3; ++i) more.push_back(s->create_queue_pair({.depth = 16}));
}

TEST_F(Homi, ChildProcessesDoVerifiedIo) {
  Rig rig;
  std::vector<Child> kids;
  for (int k = 0; k < 2; ++k)
    kids.push_back(spawn({HOMIC_VERIFY, "--socket", rig.cfg.socket, "--controller", "soft0", "--slot",
                          std::to_string(k), "--queues", "2", "--ios", "32", "--rounds", "2"}));
  for (auto& k : kids) {
    std::string line = k.read_line(60s);
    EXPECT_NE(line.find("OK"), std::string::npos) << line;
    int st = 0;
    waitpid(k.pid, &st, 0);
    k.pid = -1;
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  EXPECT_EQ(rig.daemon.snapshot().queues, 0u);
}

TEST_F(Homi, QueueBudgetExhaustionIsAClearError) {
  Opts o;
  o.per_client = 2;
  o.total = 3;
  Rig rig(o);
  auto a = rig.session("a");
  auto q1 = a->create_queue_pair({.depth = 8});
  auto q2 = a->create_queue_pair({.depth = 8});
  try {
    a->create_queue_pair({.depth = 8});
    FAIL() << "third queue granted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::no_memory);
    EXPECT_NE(std::string(e.what()).find("queue budget exhausted: this client holds 2 of its 2"), std::string::npos)
        << e.what();
  }
  auto b = rig.session("b");
  auto q3 = b->create_queue_pair({.depth = 8});
  std::string err = error_of([&] { b->create_queue_pair({.depth = 8}); });
  EXPECT_NE(err.find("limits.max_queues_total = 3"), std::string::npos) << err;
  // Depth beyond the limits, and a namespace that does not exist.
  EXPECT_NE(error_of([&] { b->client()->alloc_queue(wire::AllocQueue{0, 1, 0, 0, 0, 0}); }).find("queue depth 1"),
            std::string::npos);
  expect_error([&] { b->create_queue_pair({.depth = 8}, 5); }, Errc::invalid_argument, "namespace 5");
  // DMA budget: 256 MiB per client.
  auto c = homic::Client::connect(rig.cfg.socket);
  int mfd = memfd_create("big", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  ASSERT_EQ(ftruncate(mfd, 512ll << 20), 0);
  ASSERT_EQ(fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
  err = error_of([&] { c->register_dma(0, mfd, 512ull << 20); });
  close(mfd);
  EXPECT_NE(err.find("DMA budget exhausted"), std::string::npos) << err;
}

TEST_F(Homi, ExtentsNeedTheFilesDescriptor) {
  // Namespace 1 of the software controller stands for the disk that holds the test's
  // temporary directory (only the authorisation and the mapping are tested here).
  TempDir probe;
  std::string disk;
  try {
    auto bd = extents::backing_device(probe.path);
    disk = bd.disk_devnode;
  } catch (const Error&) {
  }
  Opts o;
  struct stat st {};
  if (!disk.empty() && ::stat(disk.c_str(), &st) == 0 && S_ISBLK(st.st_mode)) o.block_device = disk;
  Rig rig(o);
  auto client = homic::Client::connect(rig.cfg.socket);

  // 1. No descriptor: refused (a path cannot be given instead: there is no field for it).
  std::string err = error_of([&] { client->request(wire::ResolveExtents{}); });
  EXPECT_NE(err.find("descriptor"), std::string::npos) << err;
  // 2. A path string where the request has no room for one: refused as malformed.
  auto raw = wire::encode(1000, wire::ResolveExtents{});
  std::string path = rig.dir.path + "/data.bin";
  raw.insert(raw.end(), path.begin(), path.end());
  raw[8] = uint8_t(raw.size() - wire::HEADER_SIZE);
  err = error_of([&] { client->request_raw(raw); });
  EXPECT_NE(err.find("descriptor"), std::string::npos) << err;
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  err = error_of([&] { client->request_raw(raw, devnull); });
  EXPECT_NE(err.find("unexpected bytes"), std::string::npos) << err;
  close(devnull);

  // 3. A file under the dataset root but on no managed namespace (tmpfs).
  std::string shm_dir = "/dev/shm/homi-test-" + std::to_string(getpid());
  fs::create_directories(shm_dir);
  {
    std::ofstream(shm_dir + "/x.bin") << std::string(8192, 'x');
    reload_and_wait(rig.daemon, [&] {
      Policy p = rig.cfg.policy;
      p.rules[0].dataset_roots.push_back(shm_dir);
      return p;
    }());
    int fd = open((shm_dir + "/x.bin").c_str(), O_RDONLY | O_CLOEXEC);
    err = error_of([&] { client->resolve_extents(fd); });
    close(fd);
    EXPECT_NE(err.find("not on a namespace homid manages"), std::string::npos) << err;
  }
  fs::remove_all(shm_dir);

  // 4. A file outside every dataset root.
  int fd = open("/etc/hostname", O_RDONLY | O_CLOEXEC);
  if (fd < 0) fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
  err = error_of([&] { client->resolve_extents(fd); });
  close(fd);
  EXPECT_NE(err.find("not under a dataset root"), std::string::npos) << err;

  // 5. A descriptor that does not prove read access.
  {
    std::ofstream(path) << std::string(64 * 1024, 'd');
    int wfd = open(path.c_str(), O_WRONLY | O_CLOEXEC);
    EXPECT_NE(error_of([&] { client->resolve_extents(wfd); }).find("not open for reading"), std::string::npos);
    close(wfd);
    int pfd = open(path.c_str(), O_PATH | O_CLOEXEC);
    EXPECT_NE(error_of([&] { client->resolve_extents(pfd); }).find("O_PATH"), std::string::npos);
    close(pfd);
  }

  // 6. The file on the managed disk, opened for reading: its extents, as namespace offsets.
  if (o.block_device.empty()) GTEST_SKIP() << "the temporary directory is not on a block device";
  int rfd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(rfd, 0);
  wire::ResolveExtentsOk x;
  try {
    x = client->resolve_all_extents(rfd);
  } catch (const Error& e) {
    close(rfd);
    if (e.code() == Errc::not_supported && std::string(e.what()).find("FIEMAP") != std::string::npos)
      GTEST_SKIP() << e.what();
    FAIL() << e.what();
  }
  auto local = extents::fiemap(rfd);
  auto bd = extents::backing_device(rfd);
  close(rfd);
  EXPECT_EQ(x.ctrl, 0u);
  EXPECT_EQ(x.nsid, 1u);
  EXPECT_EQ(x.lba_size, 512u);
  EXPECT_EQ(x.file_size, 64u * 1024);
  EXPECT_EQ(x.path, path);
  EXPECT_EQ(x.device_offset, bd.partition ? bd.partition_start : 0);
  ASSERT_EQ(x.extents.size(), local.size());
  for (size_t i = 0; i < local.size(); ++i) {
    EXPECT_EQ(x.extents[i].logical, local[i].logical);
    EXPECT_EQ(x.extents[i].length, local[i].length);
    if (!local[i].reads_as_zeros()) {
      EXPECT_EQ(x.extents[i].physical, local[i].physical + x.device_offset);
    }
  }

  // 7. homid keeps the mapping while the file is unchanged, and maps it again once it
  // changes (here: a new size), so the answer always matches a fresh FIEMAP. An entry
  // resolved within 100 ms of the file's last change is mapped again on its next use
  // (ExtentCache's racy window): after that window, one more resolve stamps it.
  std::this_thread::sleep_for(150ms);
  auto resolve = [&] {
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    EXPECT_GE(fd, 0);
    auto r = client->resolve_all_extents(fd);
    close(fd);
    return r;
  };
  resolve();
  auto before = rig.daemon.snapshot();
  x = resolve();
  EXPECT_EQ(rig.daemon.snapshot().extent_cache_hits, before.extent_cache_hits + 1);
  EXPECT_EQ(x.file_size, 64u * 1024);
  std::ofstream(path, std::ios::app) << std::string(300 * 1024, 'e');
  rfd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(rfd, 0);
  x = client->resolve_all_extents(rfd);
  local = extents::fiemap(rfd);
  close(rfd);
  EXPECT_EQ(rig.daemon.snapshot().extent_cache_misses, before.extent_cache_misses + 1);
  EXPECT_EQ(x.file_size, 364u * 1024);
  ASSERT_EQ(x.extents.size(), local.size());
  for (size_t i = 0; i < local.size(); ++i) {
    EXPECT_EQ(x.extents[i].logical, local[i].logical);
    EXPECT_EQ(x.extents[i].length, local[i].length);
  }
}

TEST_F(Homi, MalformedMessagesHarmNoOtherClient) {
  Rig rig;
  // Client A keeps doing verified I/O on its queue the whole time.
  auto a = rig.session("a");
  auto qp = a->create_queue_pair({.depth = 16});
  std::atomic<bool> stop{false};
  std::string a_error;
  std::thread worker([&] {
    try {
      uint32_t i = 0;
      while (!stop) {
        verified_io(*qp, *a->dma(), 50000 + (i % 64) * 8, 1, i);
        ++i;
      }
    } catch (const std::exception& e) {
      a_error = e.what();
    }
  });

  auto b = homic::Client::connect(rig.cfg.socket, {"b"});
  auto refused = [&](std::vector<uint8_t> bytes, int fd = -1) {
    std::string e = error_of([&] { b->request_raw(bytes, fd); });
    EXPECT_NE(e, "");
    return e;
  };
  auto good = wire::encode(5, wire::Identify{0, 1, 0});
  // Garbage, short, truncated header, bad magic, bad version.
  EXPECT_NE(refused({1, 2, 3}).find("shorter than its 16-byte header"), std::string::npos);
  EXPECT_NE(refused(std::vector<uint8_t>(good.begin(), good.begin() + 12)).find("header"), std::string::npos);
  auto bad = good;
  bad[0] = 'X';
  EXPECT_NE(refused(bad).find("magic"), std::string::npos);
  bad = good;
  bad[4] = 2;
  EXPECT_NE(refused(bad).find("version"), std::string::npos);
  // Truncated payload: the length field says more than came.
  bad = std::vector<uint8_t>(good.begin(), good.end() - 3);
  EXPECT_NE(refused(bad).find("length field"), std::string::npos);
  // Length field consistent but the payload too short for the type.
  bad[8] = uint8_t(bad.size() - wire::HEADER_SIZE);
  EXPECT_NE(refused(bad).find("ends inside a field"), std::string::npos);
  // Oversized: more than 64 KiB in one packet.
  std::vector<uint8_t> huge(wire::MAX_MESSAGE + 4096, 0xAB);
  std::memcpy(huge.data(), good.data(), wire::HEADER_SIZE);
  EXPECT_NE(refused(huge).find("larger than"), std::string::npos);
  // Unknown type; a reply type sent as a request; a descriptor where none belongs.
  bad = good;
  bad[6] = 99;
  EXPECT_NE(refused(bad).find("unknown message type"), std::string::npos);
  EXPECT_NE(refused(wire::encode(6, wire::ReleaseQueueOk{})).find("not a request"), std::string::npos);
  int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
  EXPECT_NE(refused(good, devnull).find("descriptor"), std::string::npos);
  // A huge array count in a request-shaped message.
  {
    wire::Writer w;
    w.bytes().resize(wire::HEADER_SIZE);
    w(uint16_t(1), uint16_t(1), uint32_t(0));  // min_version, max_version, pid
    w(uint16_t(60000));                        // a string "of 60000 bytes"
    auto& p = w.bytes();
    std::memcpy(p.data(), good.data(), wire::HEADER_SIZE);
    p[6] = uint8_t(wire::Type::hello);
    uint32_t len = uint32_t(p.size() - wire::HEADER_SIZE);
    std::memcpy(p.data() + 8, &len, 4);
    expect_error([&] { b->request_raw(p, -1); }, Errc::protocol, "homi protocol: string longer than 4096 bytes");
  }
  // B is still served normally, and so is a fresh client.
  EXPECT_EQ(b->controllers().size(), 1u);
  // A client that sends garbage before hello and vanishes.
  {
    auto fd = homi::connect_unix(rig.cfg.socket);
    homi::send_packet(fd.get(), {0xde, 0xad});
    homi::send_packet(fd.get(), wire::encode(1, wire::ListControllers{}));
  }
  // A client that floods malformed messages is cut off, others are not.
  {
    auto fd = homi::connect_unix(rig.cfg.socket);
    for (int i = 0; i < 200; ++i)
      if (homi::send_packet_errno(fd.get(), {1, 2, 3}) != 0) break;
  }
  auto c = rig.session("c");
  EXPECT_EQ(c->info().name, "soft0");
  std::this_thread::sleep_for(100ms);
  stop = true;
  worker.join();
  EXPECT_EQ(a_error, "");
  EXPECT_EQ(b->controllers().size(), 1u);
  close(devnull);
  auto st = b->stats();
  bool found = false;
  for (auto& cs : st.clients)
    if (cs.name == "b") {
      found = true;
      EXPECT_GE(cs.errors, 10u);
    }
  EXPECT_TRUE(found);
}

TEST_F(Homi, DaemonRestartIsAClearErrorAndClientsReconnect) {
  TempDir dir;
  DaemonConfig cfg = make_config(dir.path);
  auto d1 = std::make_unique<Daemon>(cfg);
  d1->start();
  uint64_t first = d1->instance();
  auto s = homic::Session::open(homic::Client::connect(cfg.socket), "soft0");
  auto qp = s->create_queue_pair({.depth = 16});
  verified_io(*qp, *s->dma(), 0, 2, 1);
  d1->stop();
  d1.reset();

  EXPECT_FALSE(s->client()->connected());
  try {
    s->client()->controllers();
    FAIL() << "request to a stopped daemon succeeded";
  } catch (const homic::Disconnected& e) {
    EXPECT_NE(std::string(e.what()).find("connect again"), std::string::npos);
  }
  // I/O on the orphaned queue ends (controller_fatal) instead of hanging.
  DmaBuffer buf = s->dma()->alloc(4096);
  auto c = qp->read(1, 0, 8, buf);
  EXPECT_FALSE(c.ok());
  qp.reset();  // release fails quietly: homid is gone

  Daemon d2(cfg);
  d2.start();
  expect_error([&] { homic::Client::connect(dir.path + "/nope.sock"); }, Errc::system,
               "connect to homid at " + dir.path + "/nope.sock (is homid running?)");
  auto s2 = homic::Session::open(homic::Client::connect(cfg.socket), "soft0");
  EXPECT_NE(s2->client()->hello().instance, first);
  auto qp2 = s2->create_queue_pair({.depth = 16});
  verified_io(*qp2, *s2->dma(), 0, 2, 2);
}

TEST_F(Homi, PolicyRefusesStrangersAndReloads) {
  TempDir dir;
  DaemonConfig cfg = make_config(dir.path);
  cfg.policy.rules[0].any = false;
  cfg.policy.rules[0].uids = {4242};  // not us
  Daemon d(cfg);
  d.start();
  std::string err = error_of([&] { homic::Client::connect(cfg.socket); });
  EXPECT_NE(err.find("not admitted"), std::string::npos) << err;

  Policy open = cfg.policy;
  open.rules[0].uids = {getuid()};
  open.rules[0].max_queues = 1;
  d.reload(open);
  std::shared_ptr<homic::Client> c;
  for (int i = 0; i < 100 && !c; ++i) {
    try {
      c = homic::Client::connect(cfg.socket);
    } catch (const Error&) {
      std::this_thread::sleep_for(10ms);
    }
  }
  ASSERT_TRUE(c);
  EXPECT_EQ(c->hello().max_queues, 1u);
  // Controllers a rule does not name are invisible and refused.
  EXPECT_EQ(c->controllers().size(), 1u);
  Policy other = open;
  other.rules[0].controllers = {"elsewhere"};
  reload_and_wait(d, other);
  EXPECT_EQ(c->controllers().size(), 0u);
  // Revoking the rule disconnects the client.
  d.reload(cfg.policy);
  for (int i = 0; i < 100 && c->connected(); ++i) std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(c->connected());
  EXPECT_THROW(c->controllers(), homic::Disconnected);
}

TEST_F(Homi, HomidExecutableRunsReloadsAndStops) {
  TempDir dir;
  std::string conf = dir.path + "/homid.toml";
  std::string sock = dir.path + "/run/homid.sock";
  auto write_conf = [&](const char* level, uint32_t max_queues) {
    std::ofstream(conf) << "[daemon]\nsocket = \"" << sock << "\"\nsocket_mode = \"0600\"\nlog_level = \"" << level
                        << "\"\n[[controller]]\nname = \"emu0\"\ntype = \"soft\"\nmax_io_queues = 4\n"
                        << "[[controller.namespace]]\nsize = \"16M\"\n[[allow]]\nuids = [" << getuid()
                        << "]\nmax_queues = " << max_queues << "\n";
  };
  write_conf("warn", 2);
  {
    Child check = spawn({HOMID_BIN, "--config", conf, "--check"});
    EXPECT_NE(check.read_line(20s).find("OK"), std::string::npos);
    int st = 0;
    waitpid(check.pid, &st, 0);
    check.pid = -1;
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0);
  }
  Child d = spawn({HOMID_BIN, "--config", conf});
  auto c = homic::Client::connect(sock, {.name = "t", .wait = 20s});
  EXPECT_EQ(c->hello().max_queues, 2u);
  struct stat st {};
  ASSERT_EQ(::stat(sock.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto s = homic::Session::open(c, "emu0");
  auto qp = s->create_queue_pair({.depth = 8});
  verified_io(*qp, *s->dma(), 0, 4, 3);
  // SIGHUP: the new budget applies to new connections.
  write_conf("warn", 3);
  ASSERT_EQ(kill(d.pid, SIGHUP), 0);
  uint32_t seen = 0;
  for (int i = 0; i < 200 && seen != 3; ++i) {
    std::this_thread::sleep_for(10ms);
    seen = homic::Client::connect(sock)->hello().max_queues;
  }
  EXPECT_EQ(seen, 3u);
  qp.reset();
  ASSERT_EQ(kill(d.pid, SIGTERM), 0);
  int status = 0;
  waitpid(d.pid, &status, 0);
  d.pid = -1;
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
  EXPECT_NE(::stat(sock.c_str(), &st), 0) << "socket removed on exit";
}
