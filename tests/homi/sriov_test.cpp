// homid's SR-IOV PF management against the software controller playing the primary
// controller (through our driver's admin queue instead of the kernel's passthrough) and
// a recording stand-in for the PF's sysfs attributes.
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/expect_error.hpp"
#include "emu/controller.hpp"
#include "homi/config.hpp"
#include "homi/sriov_pf.hpp"
#include "nvme/controller.hpp"

using aisio::test::expect_error;

namespace aisio::homi {
namespace {

using Events = std::vector<std::string>;

emu::EmuConfig primary_config() {
  emu::EmuConfig c;
  c.mqes = 63;
  c.max_io_queues = 4;
  c.idle = {20, 10, 200};
  c.namespaces = {emu::NamespaceConfig{1u << 20, 512, emu::Backing::ram, ""}};
  c.secondaries = {2, 8, 4, 4, 2, 1, 1, 2, 1};  // QEMU 7.2: 8 VQ, 4 VI, 4 / 2 per secondary
  return c;
}

// Records each Virtualization Management command before running it.
class RecordingAdmin final : public AdminChannel {
 public:
  RecordingAdmin(std::shared_ptr<nvme::Controller> c, Events& ev) : inner_(std::move(c)), ev_(ev) {}
  AdminResult run(const nvme::Sqe& cmd, void* data, size_t len) override {
    if (cmd.opc == nvme::admin::VIRTUALIZATION_MANAGEMENT) {
      static const char* names[] = {"?", "primary", "?", "?", "?", "?", "?", "offline", "assign", "online"};
      uint8_t act = nvme::virt_act_of(cmd);
      std::string e = std::string(act < 10 ? names[act] : "?") + " " + std::to_string(nvme::virt_cntlid_of(cmd));
      if (act == nvme::virt_act::SECONDARY_ASSIGN)
        e += std::string(nvme::virt_rt_of(cmd) ? " vi=" : " vq=") + std::to_string(nvme::virt_nr_of(cmd));
      ev_.push_back(e);
    }
    if (fail_online && cmd.opc == nvme::admin::VIRTUALIZATION_MANAGEMENT &&
        nvme::virt_act_of(cmd) == nvme::virt_act::SECONDARY_ONLINE)
      return AdminResult{nvme::Status::make(nvme::sct::COMMAND_SPECIFIC, nvme::sc::INVALID_SECONDARY_CONTROLLER_STATE, true)};
    return inner_.run(cmd, data, len);
  }
  bool fail_online = false;
  std::string describe() const override { return inner_.describe(); }

 private:
  DriverAdminChannel inner_;
  Events& ev_;
};

class FakePf final : public PfSystem {
 public:
  explicit FakePf(Events& ev) : ev_(ev) {}
  uint32_t total = 2, numvfs = 0;
  std::vector<std::string> drivers{"", ""};
  std::function<void(const std::string&)> fail;  // throws for the named step

  uint32_t total_vfs() override { return total; }
  uint32_t num_vfs() override { return numvfs; }
  void set_autoprobe(bool on) override { step(std::string("autoprobe ") + (on ? "1" : "0")); }
  void set_num_vfs(uint32_t n) override {
    step("numvfs " + std::to_string(n));
    numvfs = n;
    if (!n) drivers.assign(drivers.size(), "");  // the kernel removes the VFs
  }
  std::string vf_address(uint16_t vfn) override {
    if (vfn > numvfs) throw Error(Errc::invalid_argument, "no VF " + std::to_string(vfn));
    return "0000:01:00." + std::to_string(vfn);
  }
  std::string driver_of(const std::string& bdf) override { return drivers[bdf.back() - '1']; }
  pcie::Driver pick_driver(const std::string&) override { return pcie::Driver::uio_pci_generic; }
  void bind(const std::string& bdf, pcie::Driver d) override {
    step("bind " + bdf + " " + pcie::driver_name(d));
    drivers[bdf.back() - '1'] = pcie::driver_name(d);
  }
  void function_reset(const std::string& bdf) override { step("flr " + bdf); }

 private:
  void step(const std::string& s) {
    ev_.push_back(s);
    if (fail) fail(s);
  }
  Events& ev_;
};

class SriovTest : public ::testing::Test {
 protected:
  void SetUp() override {
    soft = std::make_unique<emu::SoftController>(primary_config());
    soft->start();
    ctrl = nvme::Controller::create(soft->bar0(), soft->dma());
  }
  std::unique_ptr<SriovPf> make(std::vector<VfResources> vfs) {
    auto sys = std::make_unique<FakePf>(ev);
    fake = sys.get();
    SriovPfConfig cfg;
    cfg.address = "0000:01:00.0";
    cfg.vfs = std::move(vfs);
    auto admin = std::make_unique<RecordingAdmin>(ctrl, ev);
    rec = admin.get();
    return std::make_unique<SriovPf>(cfg, std::move(admin), std::move(sys));
  }
  PrimaryView view() {
    DriverAdminChannel a(ctrl);
    return read_primary(a);
  }
  static std::string error_of(const std::function<void()>& f) {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  }

  std::unique_ptr<emu::SoftController> soft;
  std::shared_ptr<nvme::Controller> ctrl;
  Events ev;
  FakePf* fake = nullptr;
  RecordingAdmin* rec = nullptr;
};

TEST_F(SriovTest, ReadPrimary) {
  PrimaryView pv = view();
  EXPECT_EQ(pv.caps.vqfrt, 8u);
  EXPECT_EQ(pv.caps.vifrsm, 2);
  ASSERT_EQ(pv.secondaries.size(), 2u);
  EXPECT_EQ(pv.secondaries[1].vfn, 2);
  EXPECT_EQ(pv.secondaries[1].scid, 3);
}

TEST_F(SriovTest, PlanChecksEveryLimit) {
  PrimaryView pv = view();
  auto plan = plan_vfs(pv, {{2, 1}, {4, 2}});
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].scid, 2);
  EXPECT_EQ(plan[1].scid, 3);
  EXPECT_EQ(plan[1].res.vq, 4);
  auto err = [&](std::vector<VfResources> w) { return error_of([&] { plan_vfs(pv, w); }); };
  EXPECT_NE(err({{5, 1}}).find("at most 4 per secondary (VQFRSM)"), std::string::npos) << err({{5, 1}});
  EXPECT_NE(err({{2, 3}}).find("at most 2 per secondary (VIFRSM)"), std::string::npos);
  EXPECT_NE(err({{1, 1}}).find("at least 2 to go online"), std::string::npos);
  EXPECT_NE(err({{2, 0}}).find("VI resources; a secondary controller needs at least 1"), std::string::npos);
  EXPECT_NE(err({{2, 1}, {2, 1}, {2, 1}}).find("no secondary controller for it"), std::string::npos);
  pv.caps.vqgran = 2;
  EXPECT_NE(err({{3, 1}}).find("not a multiple of the granularity 2 (VQGRAN)"), std::string::npos);
  pv.caps.vqgran = 1;
  pv.caps.vqrfap = 4;  // the primary keeps 4 of the 8
  EXPECT_NE(err({{4, 1}, {2, 1}}).find("6 VQ flexible resources in all; the primary controller has 8 (VQFRT), 4 of them"),
            std::string::npos)
      << err({{4, 1}, {2, 1}});
  expect_error([&] { plan_vfs(pv, {}); }, Errc::invalid_argument, "sriov: no VFs configured");
}

TEST_F(SriovTest, StartInOrderAndStop) {
  auto pf = make({{2, 1}, {2, 1}});
  pf->start();
  Events want = {"autoprobe 0", "assign 2 vq=2", "assign 2 vi=1", "assign 3 vq=2", "assign 3 vi=1", "numvfs 2",
                 "online 2",    "bind 0000:01:00.1 uio_pci_generic",  "online 3",      "bind 0000:01:00.2 uio_pci_generic"};
  EXPECT_EQ(ev, want);
  PrimaryView pv = view();
  EXPECT_EQ(pv.secondaries[0].scs, 1);
  EXPECT_EQ(pv.secondaries[1].scs, 1);
  EXPECT_EQ(pv.caps.vqrfa, 4u);
  ASSERT_EQ(pf->vfs().size(), 2u);
  EXPECT_EQ(pf->vfs()[1].bdf, "0000:01:00.2");
  ev.clear();
  pf->stop();
  // Offline while the VFs exist, then the VFs go, then the resources.
  Events undo = {"offline 2", "offline 3", "numvfs 0", "assign 2 vq=0", "assign 2 vi=0", "assign 3 vq=0", "assign 3 vi=0"};
  EXPECT_EQ(ev, undo);
  pv = view();
  EXPECT_EQ(fake->numvfs, 0u);
  EXPECT_EQ(pv.secondaries[0].scs, 0);
  EXPECT_EQ(pv.caps.vqrfa, 0u);
  EXPECT_EQ(pv.caps.virfa, 0u);
}

TEST_F(SriovTest, TooManyResourcesChangeNothing) {
  auto pf = make({{4, 2}, {4, 3}});
  std::string e = error_of([&] { pf->start(); });
  EXPECT_NE(e.find("VF 2 asks 3 VI resources; the primary controller allows at most 2"), std::string::npos) << e;
  EXPECT_TRUE(ev.empty()) << ev.front();  // refused before anything was written
  EXPECT_FALSE(pf->started());
}

TEST_F(SriovTest, VfOnAnotherDriverIsRefused) {
  auto pf = make({{2, 1}});
  fake->numvfs = 1;
  fake->drivers[0] = "nvme";
  std::string e = error_of([&] { pf->start(); });
  EXPECT_NE(e.find("0000:01:00.1) of 0000:01:00.0 is bound to nvme, another driver"), std::string::npos) << e;
  EXPECT_TRUE(ev.empty());
  EXPECT_EQ(fake->numvfs, 1u);  // left as it was
}

TEST_F(SriovTest, TakesOverWhatAKilledHomidLeft) {
  // A homid killed with SIGKILL leaves its VFs enabled, online and on uio.
  DriverAdminChannel a(ctrl);
  for (uint16_t scid : {2, 3}) {
    a.run_checked(nvme::cmd::virt_assign(scid, nvme::VirtResource::vq, 2), "assign");
    a.run_checked(nvme::cmd::virt_assign(scid, nvme::VirtResource::vi, 1), "assign");
    a.run_checked(nvme::cmd::virt_online(scid), "online");
  }
  auto pf = make({{4, 2}, {4, 2}});
  fake->numvfs = 2;
  fake->drivers = {"uio_pci_generic", "uio_pci_generic"};
  pf->start();
  Events head(ev.begin(), ev.begin() + 4);
  Events want = {"autoprobe 0", "offline 2", "offline 3", "numvfs 0"};
  EXPECT_EQ(head, want);
  PrimaryView pv = view();
  EXPECT_EQ(pv.secondaries[0].nvq, 4);
  EXPECT_EQ(pv.secondaries[1].nvi, 2);
  EXPECT_EQ(pv.secondaries[1].scs, 1);
}

TEST_F(SriovTest, FailedBindUndoesEverything) {
  auto pf = make({{2, 1}, {2, 1}});
  fake->fail = [](const std::string& s) {
    if (s.rfind("bind 0000:01:00.2", 0) == 0) throw Error(Errc::system, "bind refused");
  };
  expect_error([&] { pf->start(); }, Errc::system, "bind refused");
  EXPECT_FALSE(pf->started());
  EXPECT_EQ(fake->numvfs, 0u);
  PrimaryView pv = view();
  for (auto& s : pv.secondaries) {
    EXPECT_EQ(s.scs, 0) << s.scid;
    EXPECT_EQ(s.nvq, 0) << s.scid;
    EXPECT_EQ(s.nvi, 0) << s.scid;
  }
  EXPECT_EQ(ev.back(), "assign 3 vi=0");
}

TEST_F(SriovTest, GrantResetAndRegrant) {
  auto pf = make({{2, 1}, {2, 1}});
  pf->start();
  EXPECT_EQ(pf->acquire(7).vfn, 1);
  EXPECT_EQ(pf->acquire(8).vfn, 2);
  std::string e = error_of([&] { pf->acquire(9); });
  EXPECT_NE(e.find("every VF of 0000:01:00.0 is held"), std::string::npos) << e;
  expect_error([&] { pf->acquire(9, 1); }, Errc::no_memory, "VF 1 of 0000:01:00.0 is held by client 7");  // held by 7
  ev.clear();
  pf->release_holder(7);  // client 7 died
  Events want = {"flr 0000:01:00.1", "offline 2", "assign 2 vq=2", "assign 2 vi=1", "online 2"};
  EXPECT_EQ(ev, want);
  EXPECT_EQ(pf->vfs()[0].holder, 0u);
  EXPECT_EQ(pf->acquire(9).vfn, 1);
  EXPECT_EQ(pf->vfs()[0].grants, 2u);
  // A failed FLR alone: offline/online still reset the controller; the VF comes back.
  fake->fail = [](const std::string& s) {
    if (s.rfind("flr", 0) == 0) throw Error(Errc::system, "reset: Input/output error");
  };
  ev.clear();
  pf->release_holder(9);
  fake->fail = nullptr;
  Events want2 = {"flr 0000:01:00.1", "offline 2", "assign 2 vq=2", "assign 2 vi=1", "online 2"};
  EXPECT_EQ(ev, want2);
  EXPECT_TRUE(pf->vfs()[0].online);
  // A reset that fails keeps the VF out of service instead of granting it dirty.
  EXPECT_EQ(pf->acquire(10, 1).vfn, 1);
  rec->fail_online = true;
  pf->release_holder(10);
  rec->fail_online = false;
  EXPECT_FALSE(pf->vfs()[0].online);
  std::string e2 = error_of([&] { pf->acquire(11, 1); });
  EXPECT_NE(e2.find("out of service"), std::string::npos) << e2;
  pf->release_holder(8);
  EXPECT_EQ(pf->acquire(11).vfn, 2);  // any free VF: VF 1 is skipped
}

}  // namespace
}  // namespace aisio::homi

namespace aisio::homi {
namespace {

TEST(SriovConfig, ParsesAnSriovPf) {
  DaemonConfig cfg = parse_config(R"(
[[controller]]
name = "pf"
type = "sriov-pf"
address = "0000:01:00.0"
driver = "uio"
vfs = [{ vq = 2, vi = 1 }, { vq = 4 }]
[[controller.namespace]]
nsid = 1
block_device = "/dev/nvme0n1"
[[allow]]
uids = [0]
controllers = ["pf"]
)");
  EXPECT_TRUE(cfg.controllers.empty());
  ASSERT_EQ(cfg.sriov_pfs.size(), 1u);
  const ControllerConfig& pf = cfg.sriov_pfs[0];
  EXPECT_EQ(pf.sriov.address, "0000:01:00.0");
  EXPECT_EQ(pf.sriov.driver, pcie::Driver::uio_pci_generic);
  ASSERT_EQ(pf.sriov.vfs.size(), 2u);
  EXPECT_EQ(pf.sriov.vfs[1].vq, 4);
  EXPECT_EQ(pf.sriov.vfs[1].vi, 1);
  EXPECT_EQ(pf.backings.at(0).block_device, "/dev/nvme0n1");
  auto err = [](const std::string& text) {
    try {
      parse_config(text, "t.toml");
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("(no error)");
  };
  EXPECT_NE(err("[[controller]]\nname = \"pf\"\ntype = \"sriov-pf\"\naddress = \"1:0.0\"\n").find("needs vfs = ["),
            std::string::npos);
  EXPECT_NE(err("[[controller]]\nname = \"pf\"\ntype = \"sriov-pf\"\naddress = \"1:0.0\"\ndriver = \"x\"\nvfs = [{}]\n")
                .find("driver must be"),
            std::string::npos);
}

}  // namespace
}  // namespace aisio::homi
