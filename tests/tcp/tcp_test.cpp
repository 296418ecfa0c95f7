// NVMe/TCP: PDU encoding and decoding, CRC32C digests, and the queue pair and the
// fabrics controller against a test peer (peer.hpp) over a socketpair.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <cstring>
#include <random>

#include "common/error.hpp"
#include "peer.hpp"
#include "tcp/controller.hpp"
#include "tcp/decoder.hpp"
#include "tcp/fabrics.hpp"
#include "tcp/pdu.hpp"
#include "tcp/queue_pair.hpp"

namespace aisio::tcp {
namespace {

using test::Peer;
using test::PeerOptions;

// RFC 3720 appendix B.4: CRC32C of 32 bytes of zeros, ones, an incrementing and a
// decrementing sequence.
TEST(Crc32c, Rfc3720Vectors) {
  uint8_t b[32];
  std::memset(b, 0, 32);
  EXPECT_EQ(crc32c(b, 32), 0x8A9136AAu);
  std::memset(b, 0xFF, 32);
  EXPECT_EQ(crc32c(b, 32), 0x62A8AB43u);
  for (int i = 0; i < 32; ++i) b[i] = uint8_t(i);
  EXPECT_EQ(crc32c(b, 32), 0x46DD794Eu);
  for (int i = 0; i < 32; ++i) b[i] = uint8_t(31 - i);
  EXPECT_EQ(crc32c(b, 32), 0x113FDB5Cu);
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);
  // Pieces give the same digest as the whole.
  uint32_t c = crc32c_update(~0u, b, 13);
  EXPECT_EQ(~crc32c_update(c, b + 13, 19), 0x113FDB5Cu);
}

// Collects what a decoder produced.
struct Sink {
  std::vector<std::vector<uint8_t>> headers;
  std::vector<uint8_t> data;
  uint8_t* data_target(const uint8_t*, uint32_t len) {
    data.assign(len, 0);
    return data.data();
  }
  void on_pdu(const uint8_t* h) { headers.emplace_back(h, h + reinterpret_cast<const CommonHeader*>(h)->hlen); }
};

// Feeds `wire` in pieces of `cut` bytes.
void feed(Decoder& d, const std::vector<uint8_t>& wire, Sink& s, size_t cut) {
  for (size_t off = 0; off < wire.size(); off += cut) d.feed(wire.data() + off, std::min(cut, wire.size() - off), s);
}

std::vector<uint8_t> pdu_bytes(const uint8_t* hdr, uint32_t hlen, const uint8_t* data, uint32_t n, Digests dg) {
  std::vector<uint8_t> w(hdr, hdr + hlen);
  if (n) {
    w.insert(w.end(), data, data + n);
    if (dg.data) {
      uint32_t d = crc32c(data, n);
      w.insert(w.end(), reinterpret_cast<uint8_t*>(&d), reinterpret_cast<uint8_t*>(&d) + 4);
    }
  }
  return w;
}

class PduRoundTrip : public ::testing::TestWithParam<std::tuple<bool, bool, size_t>> {};

TEST_P(PduRoundTrip, EveryTypeDecodesToWhatWasEncoded) {
  const auto [hd, dd, cut] = GetParam();
  const Digests dg{hd, dd};
  alignas(8) uint8_t h[512];
  std::vector<uint8_t> data(5000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i * 13);

  // Controller to host: ICResp, CapsuleResp, C2HData (with padding to CPDA), R2T, C2HTermReq.
  {
    Decoder d(Role::host);
    Sink s;
    uint32_t n = encode_ic_resp(h, 3, dg, 65536);
    feed(d, pdu_bytes(h, n, nullptr, 0, dg), s, cut);
    d.set_digests(dg);
    nvme::Cqe cqe{0x11223344, 0x55667788, 3, 1, 0x42, 0x1234};
    n = encode_capsule_resp(h, cqe, dg);
    feed(d, pdu_bytes(h, n, nullptr, 0, dg), s, cut);
    n = encode_data(h, pdu::C2H_DATA, pdu::LAST_PDU | pdu::SUCCESS, 9, 0, 4096, uint32_t(data.size()), dg, 7);
    EXPECT_EQ(n % 32, 0u);  // CPDA 7: data on a 32-byte boundary
    feed(d, pdu_bytes(h, n, data.data(), uint32_t(data.size()), dg), s, cut);
    n = encode_r2t(h, 10, 0x77, 8192, 65536, dg);
    feed(d, pdu_bytes(h, n, nullptr, 0, dg), s, cut);
    n = encode_term_req(h, pdu::C2H_TERM_REQ, pdu::FES_HEADER_DIGEST_ERROR, 0x10203, h, 24);
    feed(d, std::vector<uint8_t>(h, h + n), s, cut);
    ASSERT_EQ(s.headers.size(), 5u);
    EXPECT_TRUE(d.idle());
    auto& ic = *reinterpret_cast<const IcReq*>(s.headers[0].data());
    EXPECT_EQ(ic.ch.type, pdu::IC_RESP);
    EXPECT_EQ(ic.pda, 3);
    EXPECT_EQ(ic.maxr2t, 65536u);
    EXPECT_EQ(ic.dgst, (hd ? pdu::DGST_HDGST : 0) | (dd ? pdu::DGST_DDGST : 0));
    auto& r = *reinterpret_cast<const CapsuleResp*>(s.headers[1].data());
    EXPECT_EQ(r.cqe.dw0, 0x11223344u);
    EXPECT_EQ(r.cqe.dw1, 0x55667788u);
    EXPECT_EQ(r.cqe.cid, 0x42);
    EXPECT_EQ(r.cqe.status, 0x1234);
    auto& c2h = *reinterpret_cast<const DataHeader*>(s.headers[2].data());
    EXPECT_EQ(c2h.cccid, 9);
    EXPECT_EQ(c2h.offset, 4096u);
    EXPECT_EQ(c2h.length, data.size());
    EXPECT_EQ(c2h.ch.flags & (pdu::LAST_PDU | pdu::SUCCESS), pdu::LAST_PDU | pdu::SUCCESS);
    auto& r2t = *reinterpret_cast<const DataHeader*>(s.headers[3].data());
    EXPECT_EQ(r2t.ch.type, pdu::R2T);
    EXPECT_EQ(r2t.ttag, 0x77);
    EXPECT_EQ(r2t.offset, 8192u);
    EXPECT_EQ(r2t.length, 65536u);
    auto& t = *reinterpret_cast<const TermReq*>(s.headers[4].data());
    EXPECT_EQ(t.fes, pdu::FES_HEADER_DIGEST_ERROR);
    EXPECT_EQ(uint32_t(t.fei_lo) | uint32_t(t.fei_hi) << 16, 0x10203u);
  }
  // Host to controller: ICReq, CapsuleCmd with and without in-capsule data, H2CData.
  {
    Decoder d(Role::controller);
    Sink s;
    uint32_t n = encode_ic_req(h, 0, dg, 0);
    feed(d, pdu_bytes(h, n, nullptr, 0, dg), s, cut);
    d.set_digests(dg);
    nvme::Sqe sqe{};
    sqe.opc = 1, sqe.nsid = 1, sqe.cdw10 = 0xABCDEF;
    n = encode_capsule_cmd(h, sqe, 0, dg, 0);
    feed(d, pdu_bytes(h, n, nullptr, 0, dg), s, cut);
    n = encode_capsule_cmd(h, sqe, 100, dg, 0);
    feed(d, pdu_bytes(h, n, data.data(), 100, dg), s, cut);
    EXPECT_EQ(std::vector<uint8_t>(data.begin(), data.begin() + 100), s.data);
    n = encode_data(h, pdu::H2C_DATA, pdu::LAST_PDU, 5, 0x77, 0, 3000, dg, 0);
    feed(d, pdu_bytes(h, n, data.data(), 3000, dg), s, cut);
    ASSERT_EQ(s.headers.size(), 4u);
    EXPECT_EQ(s.headers[0][0], pdu::IC_REQ);
    EXPECT_EQ(reinterpret_cast<const CapsuleCmd*>(s.headers[2].data())->sqe.cdw10, 0xABCDEFu);
    auto& h2c = *reinterpret_cast<const DataHeader*>(s.headers[3].data());
    EXPECT_EQ(h2c.ttag, 0x77);
    EXPECT_EQ(h2c.length, 3000u);
    EXPECT_EQ(std::vector<uint8_t>(data.begin(), data.begin() + 3000), s.data);
  }
}

INSTANTIATE_TEST_SUITE_P(Digests, PduRoundTrip,
                         ::testing::Combine(::testing::Bool(), ::testing::Bool(), ::testing::Values(1, 7, 100000)));

// A malformed PDU is an Error(protocol) whose message names it, and the decoder stays failed.
void expect_protocol_error(std::vector<uint8_t> wire, Digests dg, const std::string& says) {
  Decoder d(Role::host);
  d.set_digests(dg);
  Sink s;
  try {
    d.feed(wire.data(), wire.size(), s);
    FAIL() << "accepted: " << says;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::protocol);
    EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
  }
  EXPECT_TRUE(d.failed());
  EXPECT_THROW(d.feed(wire.data(), 1, s), Error);
}

TEST(PduDecoder, MalformedPdusAreClearErrors) {
  alignas(8) uint8_t h[256];
  nvme::Cqe cqe{};
  const Digests none{}, hdg{true, false}, ddg{false, true};
  uint32_t n = encode_capsule_resp(h, cqe, none);
  auto bytes = [&](uint32_t len) { return std::vector<uint8_t>(h, h + len); };

  h[2] = 20;  // HLEN
  expect_protocol_error(bytes(n), none, "HLEN 20");
  encode_capsule_resp(h, cqe, none);
  reinterpret_cast<CommonHeader*>(h)->plen = 100;
  expect_protocol_error(bytes(n), none, "PLEN 100");
  encode_capsule_resp(h, cqe, none);
  h[0] = 0x0F;
  expect_protocol_error(bytes(n), none, "unknown PDU type 15");
  encode_capsule_resp(h, cqe, none);
  h[0] = pdu::CAPSULE_CMD;  // a host never receives a command capsule
  expect_protocol_error(bytes(n), none, "unexpected CapsuleCmd");
  n = encode_capsule_resp(h, cqe, hdg);
  h[10] ^= 1;  // inside the CQE, after the digest was computed
  expect_protocol_error(bytes(n), hdg, "header digest mismatch");
  n = encode_capsule_resp(h, cqe, none);
  expect_protocol_error(bytes(n), hdg, "HDGSTF clear");
  std::vector<uint8_t> data(64, 0x5A);
  n = encode_data(h, pdu::C2H_DATA, pdu::LAST_PDU, 1, 0, 0, 64, ddg, 0);
  auto w = pdu_bytes(h, n, data.data(), 64, ddg);
  w.back() ^= 0x80;
  expect_protocol_error(w, ddg, "data digest mismatch");
  n = encode_data(h, pdu::C2H_DATA, pdu::LAST_PDU, 1, 0, 0, 64, none, 0);
  reinterpret_cast<DataHeader*>(h)->length = 65;
  expect_protocol_error(pdu_bytes(h, n, data.data(), 64, none), none, "DATAL 65");
  n = encode_data(h, pdu::C2H_DATA, pdu::LAST_PDU, 1, 0, 0, 64, none, 0);
  h[3] = 8;  // PDO inside the header
  expect_protocol_error(pdu_bytes(h, n, data.data(), 64, none), none, "PDO 8");
}

// A connected host queue and its peer.
struct Pair {
  std::unique_ptr<Peer> peer;
  std::unique_ptr<QueuePair> qp;
  Pair(PeerOptions po, QueueOptions qo, uint16_t qid = 1, const char* nqn = "nqn.test:peer") {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    peer = std::make_unique<Peer>(sv[1], po);
    ConnectTarget t;
    t.addr = {"peer", 4420, nqn};
    t.host = {"nqn.2014-08.org.nvmexpress:uuid:test", {}};
    t.qid = qid;
    t.cntlid = 0x21;
    qp = QueuePair::over(Fd(sv[0]), t, qo);
  }
};

nvme::Sqe rw(uint8_t opc, uint64_t slba, uint32_t nlb) {
  nvme::Sqe s{};
  s.opc = opc, s.nsid = 1, s.cdw10 = uint32_t(slba), s.cdw12 = nlb - 1;
  return s;
}

class Queue : public ::testing::TestWithParam<std::tuple<bool, bool, bool>> {};

TEST_P(Queue, ReadsAndWritesOfEverySizeMoveTheRightBytes) {
  const auto [hd, dd, success] = GetParam();
  PeerOptions po;
  po.grant = {true, true};
  po.success_flag = success;
  po.maxh2cdata = 4096;
  po.cpda = dd ? 3 : 0;
  Pair p(po, {.depth = 16, .timeout = std::chrono::milliseconds(5000), .digests = {hd, dd}, .in_capsule_max = 4096});
  EXPECT_EQ(p.qp->cntlid(), 0x21);
  EXPECT_EQ(p.peer->connected_qid, 1);
  EXPECT_EQ(p.peer->sqsize, 15);  // 0-based
  EXPECT_EQ(p.qp->digests().header, hd);
  EXPECT_EQ(p.qp->digests().data, dd);

  // Read 40 KiB: ten C2HData PDUs.
  std::vector<uint8_t> buf(40960);
  ASSERT_TRUE(p.qp->execute(rw(nvme::nvm::READ, 8, 80), buf.data(), uint32_t(buf.size())).ok());
  EXPECT_EQ(0, std::memcmp(buf.data(), p.peer->ns().data() + 8 * 512, buf.size()));
  // Write 2 KiB in the capsule, then 20 KiB through one R2T and five H2CData PDUs.
  std::vector<uint8_t> w(20480);
  for (size_t i = 0; i < w.size(); ++i) w[i] = uint8_t(i ^ 0xA5);
  ASSERT_TRUE(p.qp->execute(rw(nvme::nvm::WRITE, 100, 4), w.data(), 2048).ok());
  EXPECT_EQ(p.peer->r2ts.load(), 0u);
  EXPECT_EQ(0, std::memcmp(p.peer->ns().data() + 100 * 512, w.data(), 2048));
  ASSERT_TRUE(p.qp->execute(rw(nvme::nvm::WRITE, 200, 40), w.data(), uint32_t(w.size())).ok());
  EXPECT_EQ(p.peer->r2ts.load(), 1u);
  EXPECT_EQ(p.qp->stats().h2c_pdus, 5u);
  EXPECT_EQ(0, std::memcmp(p.peer->ns().data() + 200 * 512, w.data(), w.size()));
  // An error status comes back as the controller's status.
  nvme::Completion c = p.qp->execute(rw(nvme::nvm::READ, Peer::kBlocks, 1), buf.data(), 512);
  EXPECT_FALSE(c.ok());
  EXPECT_EQ(c.status.sc(), 0x80);
  EXPECT_TRUE(p.qp->connected());
}

INSTANTIATE_TEST_SUITE_P(DigestsAndSuccess, Queue, ::testing::Combine(::testing::Bool(), ::testing::Bool(), ::testing::Bool()));

TEST(Queue, ManyCommandsInFlightCompleteOnceEach) {
  Pair p({}, {.depth = 32, .timeout = std::chrono::milliseconds(5000), .in_capsule_max = 4096});
  struct Io {
    int done = 0;
    bool ok = false;
    std::vector<uint8_t> buf = std::vector<uint8_t>(8192);
  };
  std::vector<Io> ios(31);
  auto cb = [](void* a, nvme::Completion c) {
    auto* io = static_cast<Io*>(a);
    ++io->done;
    io->ok = c.ok();
  };
  for (uint32_t round = 0; round < 10; ++round) {
    for (uint32_t i = 0; i < ios.size(); ++i) {
      ios[i].done = 0;
      const bool write = (i + round) % 3 == 0;
      for (size_t b = 0; b < 8192; ++b) ios[i].buf[b] = write ? uint8_t(b + i + round) : 0;
      ASSERT_TRUE(p.qp->submit(rw(write ? nvme::nvm::WRITE : nvme::nvm::READ, i * 16, 16), ios[i].buf.data(), 8192, cb, &ios[i]));
    }
    EXPECT_FALSE(p.qp->submit(rw(nvme::nvm::READ, 0, 1), ios[0].buf.data(), 512, cb, &ios[0]));  // full
    p.qp->ring();
    uint32_t done = 0;
    while (done < ios.size()) done += p.qp->poll();
    for (uint32_t i = 0; i < ios.size(); ++i) {
      EXPECT_EQ(ios[i].done, 1);
      EXPECT_TRUE(ios[i].ok);
      EXPECT_EQ(0, std::memcmp(ios[i].buf.data(), p.peer->ns().data() + i * 16 * 512, 8192));
    }
  }
  EXPECT_EQ(p.qp->in_flight(), 0u);
}

TEST(Queue, ConnectRefusedIsTheControllersStatus) {
  try {
    Pair p({}, {.depth = 4, .timeout = std::chrono::milliseconds(5000)}, 1, "nqn.test:other");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::nvme_status);
    EXPECT_NE(std::string(e.what()).find("refused Connect"), std::string::npos) << e.what();
  }
}

// Records how a command ended, and counts the ends.
struct Ended {
  nvme::HostStatus* st;
  int* ended;
  static void cb(void* x, nvme::Completion c) {
    auto* a = static_cast<Ended*>(x);
    *a->st = c.host;
    ++*a->ended;
  }
};

// Each fault ends the connection with an Error that says what happened; later commands
// are refused at once.
void expect_fault(PeerOptions::Fault f, Errc code, const std::string& says, Digests dg = {}) {
  PeerOptions po;
  po.fault = f;
  po.fault_after = 2;  // Connect and one command are answered properly
  po.grant = {true, true};
  Pair p(po, {.depth = 8, .timeout = std::chrono::milliseconds(400), .digests = dg});
  std::vector<uint8_t> buf(4096);
  ASSERT_TRUE(p.qp->execute(rw(nvme::nvm::READ, 0, 8), buf.data(), 4096).ok());
  try {
    p.qp->execute(rw(nvme::nvm::READ, 0, 8), buf.data(), 4096);
    FAIL() << "no error for " << says;
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), code) << e.what();
    EXPECT_NE(std::string(e.what()).find(says), std::string::npos) << e.what();
  }
  EXPECT_FALSE(p.qp->connected());
  ASSERT_TRUE(p.qp->error());
  EXPECT_THROW(p.qp->execute(rw(nvme::nvm::READ, 0, 8), buf.data(), 4096), Error);
}

TEST(QueueFaults, WrongLength) { expect_fault(PeerOptions::Fault::bad_hlen, Errc::protocol, "HLEN 20"); }
TEST(QueueFaults, BadHeaderDigest) {
  expect_fault(PeerOptions::Fault::bad_hdgst, Errc::protocol, "header digest mismatch", {true, false});
}
TEST(QueueFaults, BadDataDigest) {
  expect_fault(PeerOptions::Fault::bad_ddgst, Errc::protocol, "data digest mismatch", {false, true});
}
TEST(QueueFaults, UnknownType) { expect_fault(PeerOptions::Fault::unknown_type, Errc::protocol, "unknown PDU type 15"); }
TEST(QueueFaults, TerminationRequest) {
  expect_fault(PeerOptions::Fault::term_req, Errc::protocol, "terminated the connection: invalid PDU header field");
}
TEST(QueueFaults, ConnectionClosed) { expect_fault(PeerOptions::Fault::close, Errc::io, "closed"); }
TEST(QueueFaults, SilentControllerTimesOut) {
  expect_fault(PeerOptions::Fault::silent, Errc::timeout, "no answer within 400 ms");
}

TEST(QueueFaults, OutstandingCommandsEndWithTransportStatus) {
  PeerOptions po;
  po.fault = PeerOptions::Fault::close;
  po.fault_after = 1;  // after Connect
  Pair p(po, {.depth = 8, .timeout = std::chrono::milliseconds(5000)});
  std::vector<uint8_t> buf(4 * 4096);
  nvme::HostStatus st[4];
  int ended = 0;
  Ended a[4];
  for (int i = 0; i < 4; ++i) {
    a[i] = {&st[i], &ended};
    ASSERT_TRUE(p.qp->submit(rw(nvme::nvm::READ, 0, 8), buf.data() + i * 4096, 4096,
                             &Ended::cb,
                             &a[i]));
  }
  p.qp->ring();
  while (ended < 4) p.qp->poll();
  for (auto s : st) EXPECT_EQ(s, nvme::HostStatus::transport);
  EXPECT_EQ(p.qp->in_flight(), 0u);
}

TEST(Controller, BringUpIdentifyIoAndKeepAliveOverLoopback) {
  test::Listener l;
  char dir[] = "/tmp/aisio-hostnqn-XXXXXX";
  ASSERT_TRUE(mkdtemp(dir));
  ControllerOptions o;
  o.kato_ms = 100;
  o.etc_nvme = dir;
  auto c = Controller::connect(parse_address("tcp://127.0.0.1:" + std::to_string(l.port()) + "/nqn.test:peer"), o);
  rmdir(dir);
  EXPECT_EQ(c->cntlid(), 0x21);
  EXPECT_EQ(c->cap().mqes(), 127u);
  EXPECT_EQ(c->version().raw, 0x10400u);
  EXPECT_EQ(nvme::trim_id_string(c->id().mn, sizeof c->id().mn), "aisio test peer");
  EXPECT_EQ(c->in_capsule_max(), 4096u);
  EXPECT_EQ(c->mdts_bytes(), 128u << 10);
  EXPECT_EQ(c->io_queue_limit(), 4);
  ASSERT_EQ(c->namespaces().size(), 1u);
  EXPECT_EQ(c->ns(1).nsze, Peer::kBlocks);
  EXPECT_EQ(c->ns(1).lba_size, 512u);
  EXPECT_THROW(c->ns(2), Error);

  auto q1 = c->create_queue_pair({.depth = 8});
  auto q2 = c->create_queue_pair({.depth = 8});
  EXPECT_EQ(q1->qid(), 1);
  EXPECT_EQ(q2->qid(), 2);
  std::vector<uint8_t> w(65536), r(65536);
  for (size_t i = 0; i < w.size(); ++i) w[i] = uint8_t(i * 31);
  ASSERT_TRUE(q1->execute(nvme::cmd::rw(nvme::nvm::WRITE, 1, 10, 128), w.data(), 65536).ok());
  ASSERT_TRUE(q2->execute(nvme::cmd::rw(nvme::nvm::READ, 1, 10, 128), r.data(), 65536).ok());
  EXPECT_EQ(w, r);
  EXPECT_EQ(0, std::memcmp(l.ns().data() + 10 * 512, w.data(), w.size()));
  EXPECT_EQ(l.connections(), 3u);  // admin + two I/O queues
  // Keep Alive every KATO/2 = 50 ms.
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  EXPECT_GE(c->keep_alives(), 3u);
  EXPECT_GE(l.keep_alives(), 3u);
}

TEST(Controller, RefusedConnectionIsASystemError) {
  int s = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(s);  // a port nobody listens on
  try {
    Controller::connect(parse_address("tcp://127.0.0.1:" + std::to_string(ntohs(a.sin_port)) + "/nqn.x"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), Errc::system);
    EXPECT_NE(std::string(e.what()).find("cannot connect to 127.0.0.1"), std::string::npos) << e.what();
  }
}

// Commands outstanding when every connection breaks (a target restart) are sent again
// on new connections, after a new controller association, and complete once each.
TEST(Recovery, OutstandingCommandsAreRetriedAfterTheTargetComesBack) {
  PeerOptions silent;
  silent.fault = PeerOptions::Fault::silent;  // I/O commands get no answer...
  silent.fault_after = 1;                     // ...after Connect
  silent.io_only = true;
  test::Listener l(silent);
  ControllerOptions o;
  o.kato_ms = 0;
  o.ctrl_loss_timeout = std::chrono::milliseconds(5000);
  o.reconnect_delay = std::chrono::milliseconds(20);
  o.etc_nvme = "/nonexistent";
  auto c = Controller::connect(parse_address("tcp://127.0.0.1:" + std::to_string(l.port()) + "/nqn.test:peer"), o);
  auto q = c->create_queue_pair({.depth = 32});
  struct Io {
    int done = 0;
    nvme::Completion c;
    std::vector<uint8_t> buf = std::vector<uint8_t>(8192);
  };
  std::vector<Io> ios(12);
  auto cb = [](void* a, nvme::Completion c) {
    auto* io = static_cast<Io*>(a);
    ++io->done;
    io->c = c;
  };
  for (uint32_t i = 0; i < ios.size(); ++i) {
    const bool write = i % 3 == 0;
    const uint32_t len = i % 2 ? 8192 : 2048;  // R2T and in-capsule writes
    for (size_t b = 0; b < len; ++b) ios[i].buf[b] = write ? uint8_t(b * 5 + i) : 0;
    ASSERT_TRUE(q->submit(rw(write ? nvme::nvm::WRITE : nvme::nvm::READ, 100 + i * 16, len / 512), ios[i].buf.data(),
                          len, cb, &ios[i]));
  }
  q->ring();
  for (int i = 0; i < 20; ++i) q->poll();  // the target swallows them
  EXPECT_EQ(q->in_flight(), ios.size());
  l.set_options({});
  l.drop_all();
  const auto deadline = Clock::now() + std::chrono::seconds(10);
  uint32_t done = 0;
  while (done < ios.size() && Clock::now() < deadline) done += q->poll();
  ASSERT_EQ(done, ios.size());
  for (uint32_t i = 0; i < ios.size(); ++i) {
    EXPECT_EQ(ios[i].done, 1) << i;
    EXPECT_TRUE(ios[i].c.ok()) << i << ": " << ios[i].c.describe();
    const uint32_t len = i % 2 ? 8192 : 2048;
    EXPECT_EQ(0, std::memcmp(ios[i].buf.data(), l.ns().data() + (100 + i * 16) * 512, len)) << i;
  }
  EXPECT_EQ(q->reconnects(), 1u);
  EXPECT_GE(c->reassociations(), 1u);
  EXPECT_TRUE(q->connected());
  // And the queue goes on working.
  std::vector<uint8_t> r(4096);
  EXPECT_TRUE(q->execute(rw(nvme::nvm::READ, 0, 8), r.data(), 4096).ok());
}

// A target that does not come back: the commands end with HostStatus::transport once
// the controller-loss timeout has passed, and the error says so.
TEST(Recovery, ControllerLossTimeoutEndsTheCommands) {
  PeerOptions silent;
  silent.fault = PeerOptions::Fault::silent;
  silent.fault_after = 1;
  silent.io_only = true;
  auto l = std::make_unique<test::Listener>(silent);
  ControllerOptions o;
  o.kato_ms = 0;
  o.ctrl_loss_timeout = std::chrono::milliseconds(300);
  o.reconnect_delay = std::chrono::milliseconds(20);
  o.etc_nvme = "/nonexistent";
  auto c = Controller::connect(parse_address("tcp://127.0.0.1:" + std::to_string(l->port()) + "/nqn.test:peer"), o);
  auto q = c->create_queue_pair({.depth = 8});
  std::vector<uint8_t> buf(4 * 4096);
  nvme::HostStatus st[4]{};
  int ended = 0;
  Ended a[4];
  for (int i = 0; i < 4; ++i) {
    a[i] = {&st[i], &ended};
    ASSERT_TRUE(q->submit(rw(nvme::nvm::READ, 0, 8), buf.data() + i * 4096, 4096,
                          &Ended::cb,
                          &a[i]));
  }
  q->ring();
  for (int i = 0; i < 20; ++i) q->poll();
  const auto t0 = Clock::now();
  l.reset();  // the target goes away for good
  while (ended < 4 && Clock::now() < t0 + std::chrono::seconds(10)) q->poll();
  ASSERT_EQ(ended, 4);
  EXPECT_GE(Clock::now() - t0, std::chrono::milliseconds(300));
  for (auto s : st) EXPECT_EQ(s, nvme::HostStatus::transport);
  ASSERT_TRUE(q->error());
  EXPECT_NE(std::string(q->error()->what()).find("controller-loss timeout (300 ms)"), std::string::npos)
      << q->error()->what();
  EXPECT_FALSE(q->connected());
  EXPECT_THROW(q->execute(rw(nvme::nvm::READ, 0, 8), buf.data(), 4096), Error);
}

// A synchronous command issued while the queue is reconnecting is sent on the new
// connection, and its timeout counts from there (as for every resent command), not
// from its submission: a reconnect slower than the timeout must not time it out.
TEST(Recovery, ExecuteDuringRecoveryTimesOutFromTheResend) {
  test::Listener l;
  ControllerOptions o;
  o.kato_ms = 0;
  o.ctrl_loss_timeout = std::chrono::milliseconds(5000);
  o.reconnect_delay = std::chrono::milliseconds(600);  // the reconnect outlasts the command timeout
  o.etc_nvme = "/nonexistent";
  auto c = Controller::connect(parse_address("tcp://127.0.0.1:" + std::to_string(l.port()) + "/nqn.test:peer"), o);
  auto q = c->create_queue_pair({.depth = 8, .timeout = std::chrono::milliseconds(400)});
  std::vector<uint8_t> buf(4096);
  ASSERT_TRUE(q->execute(rw(nvme::nvm::READ, 0, 8), buf.data(), 4096).ok());
  PeerOptions silent;  // the new I/O connection takes commands but never answers
  silent.fault = PeerOptions::Fault::silent;
  silent.fault_after = 1;
  silent.io_only = true;
  l.set_options(silent);
  l.drop_all();
  const auto until = Clock::now() + std::chrono::seconds(5);
  while (!q->recovering() && Clock::now() < until) q->poll();
  ASSERT_TRUE(q->recovering());
  const auto t0 = Clock::now();
  EXPECT_THROW(q->execute(rw(nvme::nvm::READ, 0, 8), buf.data(), 4096), Error);
  // Reconnected after reconnect_delay, then a full timeout on the new connection.
  EXPECT_GE(Clock::now() - t0, std::chrono::milliseconds(950));
  EXPECT_EQ(q->reconnects(), 1u);
  ASSERT_TRUE(q->error());
  EXPECT_EQ(q->error()->code(), Errc::timeout) << q->error()->what();
}

TEST(Address, ParsesAndRefuses) {
  Address a = parse_address("tcp://127.0.0.1/nqn.x");
  EXPECT_EQ(a.host, "127.0.0.1");
  EXPECT_EQ(a.port, 4420);
  EXPECT_EQ(a.subnqn, "nqn.x");
  a = parse_address("tcp://[::1]:4421/nqn.y");
  EXPECT_EQ(a.host, "::1");
  EXPECT_EQ(a.port, 4421);
  EXPECT_EQ(a.describe(), "tcp://[::1]:4421/nqn.y");
  a = parse_address("tcp://h/nqn.z?ctrl_loss_tmo=30");
  EXPECT_EQ(a.subnqn, "nqn.z");
  EXPECT_EQ(a.ctrl_loss_tmo_s, 30);
  for (const char* bad : {"tcp://host", "tcp:///nqn", "tcp://h:0/n", "tcp://h:99999/n", "tcp://h:x/n", "udp://h/n",
                          "tcp://h/n?ctrl_loss_tmo=x", "tcp://h/n?other=1", "tcp://h/?ctrl_loss_tmo=1"})
    EXPECT_THROW(parse_address(bad), Error) << bad;
}

TEST(HostIdentity, FromFilesOrGenerated) {
  char dir[] = "/tmp/aisio-hostnqn-XXXXXX";
  ASSERT_TRUE(mkdtemp(dir));
  HostIdentity g = host_identity(dir);
  EXPECT_EQ(g.nqn.rfind("nqn.2014-08.org.nvmexpress:uuid:", 0), 0u);
  EXPECT_NE(g.id, (std::array<uint8_t, 16>{}));
  FILE* f = fopen((std::string(dir) + "/hostnqn").c_str(), "w");
  fputs("nqn.2014-08.org.nvmexpress:uuid:00112233-4455-6677-8899-aabbccddeeff\n", f);
  fclose(f);
  HostIdentity h = host_identity(dir);
  EXPECT_EQ(h.nqn, "nqn.2014-08.org.nvmexpress:uuid:00112233-4455-6677-8899-aabbccddeeff");
  EXPECT_EQ(h.id[0], 0x00);
  EXPECT_EQ(h.id[15], 0xFF);
  std::remove((std::string(dir) + "/hostnqn").c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace aisio::tcp
