// The software controller as an SR-IOV primary controller: the Identify CNS 14h/15h
// layouts, the Virtualization Management encoding and its checks and status codes.
#include <gtest/gtest.h>

#include <cstring>

#include "common/error.hpp"
#include "common/expect_error.hpp"
#include "emu/controller.hpp"
#include "emu/raw_host.hpp"
#include "spec/identify.hpp"
#include "spec/virtualization.hpp"

using aisio::test::expect_error;

namespace aisio::emu {
namespace {

using test::RawHost;
namespace sc = nvme::sc;
namespace sct = nvme::sct;
using nvme::VirtResource;

// As QEMU 7.2's nvme with sriov_max_vfs=2, sriov_vq_flexible=8, sriov_vi_flexible=4.
EmuConfig primary_config(uint16_t secondaries = 2) {
  EmuConfig c;
  c.mqes = 63;
  c.max_io_queues = 4;
  c.idle = {20, 10, 200};
  c.namespaces = {NamespaceConfig{1u << 20, 512, Backing::ram, ""}};
  c.secondaries = {secondaries, 8, 4, 4, 2, 1, 1, 2, 1};
  return c;
}

TEST(VirtualizationEncoding, CommandDwords) {
  nvme::Sqe s = nvme::cmd::virt_assign(0x1234, VirtResource::vi, 3);
  EXPECT_EQ(s.opc, 0x1C);
  EXPECT_EQ(s.cdw10, 0x12340108u);  // CNTLID 31:16, RT 10:8 = 1, ACT 3:0 = 8
  EXPECT_EQ(s.cdw11, 3u);
  EXPECT_EQ(nvme::virt_act_of(s), nvme::virt_act::SECONDARY_ASSIGN);
  EXPECT_EQ(nvme::virt_rt_of(s), 1);
  EXPECT_EQ(nvme::virt_cntlid_of(s), 0x1234);
  EXPECT_EQ(nvme::virt_nr_of(s), 3);
  EXPECT_EQ(nvme::cmd::virt_online(2).cdw10, 0x00020009u);
  EXPECT_EQ(nvme::cmd::virt_offline(2).cdw10, 0x00020007u);
  EXPECT_EQ(nvme::cmd::identify_primary_caps().cdw10, 0x14u);
  EXPECT_EQ(nvme::cmd::identify_secondary_list(3).cdw10, 0x00030015u);
}

class VirtTest : public ::testing::Test {
 protected:
  void start(EmuConfig c = primary_config()) {
    ctrl = std::make_unique<SoftController>(std::move(c));
    ctrl->start();
    host = std::make_unique<RawHost>(ctrl->bar0(), ctrl->dma());
    ASSERT_TRUE(host->enable());
    buf = host->heap().alloc(4096);
  }
  nvme::Status ident(uint8_t cns, uint16_t cntid = 0) {
    std::memset(buf.data(), 0xA5, 4096);
    nvme::Sqe id = nvme::cmd::identify(cns, 0, cntid);
    id.prp1 = buf.iova();
    return host->admin_status(id);
  }
  nvme::Cqe virt(const nvme::Sqe& s) { return host->admin(s); }
  nvme::Status virt_status(const nvme::Sqe& s) { return test::status_of(host->admin(s)); }
  const nvme::PrimaryControllerCaps& caps() {
    EXPECT_TRUE(ident(nvme::cns::PRIMARY_CONTROLLER_CAPS).ok());
    return *buf.as<nvme::PrimaryControllerCaps>();
  }
  const nvme::SecondaryControllerList& list(uint16_t first = 0) {
    EXPECT_TRUE(ident(nvme::cns::SECONDARY_CONTROLLER_LIST, first).ok());
    return *buf.as<nvme::SecondaryControllerList>();
  }

  std::unique_ptr<SoftController> ctrl;
  std::unique_ptr<RawHost> host;
  DmaBuffer buf;
};

TEST_F(VirtTest, PrimaryCapsAndSecondaryList) {
  start();
  ASSERT_TRUE(ident(nvme::cns::CONTROLLER).ok());
  EXPECT_TRUE(buf.as<nvme::IdentifyController>()->oacs & nvme::oacs::VIRTUALIZATION_MANAGEMENT);
  const auto& c = caps();
  EXPECT_EQ(c.cntlid, 1);
  EXPECT_EQ(c.crt, nvme::crt::VQ | nvme::crt::VI);
  EXPECT_EQ(c.vqfrt, 8u);
  EXPECT_EQ(c.vqrfa, 0u);
  EXPECT_EQ(c.vqprt, 2);
  EXPECT_EQ(c.vqfrsm, 4);
  EXPECT_EQ(c.vqgran, 1);
  EXPECT_EQ(c.vifrt, 4u);
  EXPECT_EQ(c.vifrsm, 2);
  EXPECT_EQ(c.viprt, 1);
  // Reserved bytes are zero, not the 0xA5 fill: the whole page was written.
  EXPECT_EQ(c.rsvd80[0], 0);
  EXPECT_EQ(c.rsvd80[4015], 0);
  // Byte offsets of the fields (figure "Primary Controller Capabilities Structure").
  const auto* raw = reinterpret_cast<const uint8_t*>(&c);
  EXPECT_EQ(raw[32], 8);  // VQFRT
  EXPECT_EQ(raw[44], 4);  // VQFRSM
  EXPECT_EQ(raw[64], 4);  // VIFRT
  EXPECT_EQ(raw[76], 2);  // VIFRSM

  const auto& l = list();
  ASSERT_EQ(l.count, 2);
  EXPECT_EQ(l.entries[0].scid, 2);
  EXPECT_EQ(l.entries[0].pcid, 1);
  EXPECT_EQ(l.entries[0].vfn, 1);
  EXPECT_EQ(l.entries[0].scs, 0);
  EXPECT_EQ(l.entries[1].scid, 3);
  EXPECT_EQ(l.entries[1].vfn, 2);
  EXPECT_EQ(l.entries[2].scid, 0);
  // CDW10.CNTID: entries from that identifier on.
  const auto& tail = list(3);
  ASSERT_EQ(tail.count, 1);
  EXPECT_EQ(tail.entries[0].scid, 3);
  EXPECT_EQ(list(4).count, 0);
}

TEST_F(VirtTest, AssignOnlineOffline) {
  start();
  auto c = virt(nvme::cmd::virt_assign(2, VirtResource::vq, 2));
  ASSERT_TRUE(test::status_of(c).ok());
  EXPECT_EQ(c.dw0, 2u);  // resources assigned
  ASSERT_TRUE(virt_status(nvme::cmd::virt_assign(2, VirtResource::vi, 1)).ok());
  EXPECT_EQ(caps().vqrfa, 2u);
  EXPECT_EQ(caps().virfa, 1u);
  ASSERT_TRUE(virt_status(nvme::cmd::virt_online(2)).ok());
  const auto& l = list();
  EXPECT_EQ(l.entries[0].scs, 1);
  EXPECT_EQ(l.entries[0].nvq, 2);
  EXPECT_EQ(l.entries[0].nvi, 1);
  // An online secondary's resources cannot change.
  EXPECT_TRUE(virt_status(nvme::cmd::virt_assign(2, VirtResource::vq, 4))
                  .is(sct::COMMAND_SPECIFIC, sc::INVALID_SECONDARY_CONTROLLER_STATE));
  ASSERT_TRUE(virt_status(nvme::cmd::virt_offline(2)).ok());
  EXPECT_EQ(list().entries[0].scs, 0);
  EXPECT_EQ(list().entries[0].nvq, 0);  // offline returns the resources (as QEMU 7.2)
  EXPECT_EQ(caps().vqrfa, 0u);
  EXPECT_TRUE(virt_status(nvme::cmd::virt_online(2)).is(sct::COMMAND_SPECIFIC, sc::INVALID_SECONDARY_CONTROLLER_STATE));
}

TEST_F(VirtTest, ChecksAndStatusCodes) {
  start();
  auto is = [](nvme::Status s, uint8_t code) { return s.is(sct::COMMAND_SPECIFIC, code) && s.dnr(); };
  // Not a secondary controller (the primary is 1; 9 does not exist).
  EXPECT_TRUE(is(virt_status(nvme::cmd::virt_assign(1, VirtResource::vq, 2)), sc::INVALID_CONTROLLER_IDENTIFIER));
  EXPECT_TRUE(is(virt_status(nvme::cmd::virt_online(9)), sc::INVALID_CONTROLLER_IDENTIFIER));
  // Resource type 2 does not exist.
  EXPECT_TRUE(is(virt_status(nvme::cmd::virtualization_management(nvme::virt_act::SECONDARY_ASSIGN, 2,
                                                                   VirtResource(2), 1)),
                 sc::INVALID_RESOURCE_IDENTIFIER));
  // Above VQFRSM (4) for one secondary.
  EXPECT_TRUE(is(virt_status(nvme::cmd::virt_assign(2, VirtResource::vq, 5)), sc::INVALID_NUMBER_OF_CONTROLLER_RESOURCES));
  // Above what is left in total: 4 + 4 of 8 is fine, then the primary cannot get any.
  EXPECT_TRUE(virt_status(nvme::cmd::virt_assign(2, VirtResource::vq, 4)).ok());
  EXPECT_TRUE(virt_status(nvme::cmd::virt_assign(3, VirtResource::vq, 4)).ok());
  EXPECT_TRUE(is(virt_status(nvme::cmd::virtualization_management(nvme::virt_act::PRIMARY_FLEXIBLE_ALLOCATION, 1,
                                                                   VirtResource::vq, 1)),
                 sc::INVALID_NUMBER_OF_CONTROLLER_RESOURCES));
  EXPECT_TRUE(virt_status(nvme::cmd::virt_assign(3, VirtResource::vq, 2)).ok());
  // The primary took 2: secondary 3 can now get back to 2 only, not 4.
  EXPECT_TRUE(virt_status(nvme::cmd::virtualization_management(nvme::virt_act::PRIMARY_FLEXIBLE_ALLOCATION, 1,
                                                               VirtResource::vq, 2))
                  .ok());
  EXPECT_TRUE(is(virt_status(nvme::cmd::virt_assign(3, VirtResource::vq, 4)), sc::INVALID_NUMBER_OF_CONTROLLER_RESOURCES));
  EXPECT_EQ(caps().vqrfap, 2);
  // Online without an interrupt resource.
  EXPECT_TRUE(is(virt_status(nvme::cmd::virt_online(2)), sc::INVALID_SECONDARY_CONTROLLER_STATE));
  // Unknown action.
  EXPECT_TRUE(virt_status(nvme::cmd::virtualization_management(0x5, 2)).is(sct::GENERIC, sc::INVALID_FIELD));
  // The state belongs to the controller: a controller reset keeps it.
  ASSERT_TRUE(host->disable());
  ASSERT_TRUE(host->enable());
  EXPECT_EQ(list().entries[0].nvq, 4);
}

TEST_F(VirtTest, NotAPrimaryController) {
  start(primary_config(0));
  EXPECT_TRUE(ident(nvme::cns::PRIMARY_CONTROLLER_CAPS).is(sct::GENERIC, sc::INVALID_FIELD));
  EXPECT_TRUE(ident(nvme::cns::SECONDARY_CONTROLLER_LIST).is(sct::GENERIC, sc::INVALID_FIELD));
  EXPECT_TRUE(virt_status(nvme::cmd::virt_online(2)).is(sct::GENERIC, sc::INVALID_OPCODE));
  ASSERT_TRUE(ident(nvme::cns::CONTROLLER).ok());
  EXPECT_FALSE(buf.as<nvme::IdentifyController>()->oacs & nvme::oacs::VIRTUALIZATION_MANAGEMENT);
}

TEST(VirtConfig, Validation) {
  EmuConfig c = primary_config();
  c.secondaries.vq_max = 9;
  expect_error([&] { c.validate(); }, Errc::invalid_argument, "per-secondary maximum above the total");
  c = primary_config();
  c.secondaries.vi_flexible = 0;
  expect_error([&] { c.validate(); }, Errc::invalid_argument, "need VQ and VI flexible resources");
  c = primary_config(128);
  expect_error([&] { c.validate(); }, Errc::invalid_argument, "secondaries.count must be at most 127");
  EXPECT_NO_THROW(primary_config().validate());
}

}  // namespace
}  // namespace aisio::emu
