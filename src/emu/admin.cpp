#include "emu/admin.hpp"

#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>

#include "spec/identify.hpp"
#include "spec/registers.hpp"
#include "spec/virtualization.hpp"

namespace aisio::emu {

namespace sc = nvme::sc;
using nvme::Sqe;
using nvme::Status;

namespace {

// Identify strings are ASCII, space padded.
void pad_copy(char* dst, size_t n, const std::string& s) {
  std::memset(dst, ' ', n);
  std::memcpy(dst, s.data(), std::min(n, s.size()));
}

void put_u128(uint8_t* dst, uint64_t v) {
  std::memset(dst, 0, 16);
  std::memcpy(dst, &v, 8);
}

uint64_t fnv1a(const std::string& s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

Admin::Admin(Core& core, std::vector<std::unique_ptr<Worker>>& workers)
    : core_(core), workers_(workers), reader_(core.dma->reader()), virt_(core.cfg.secondaries, 1) {
  sqs_.resize(core.regs.max_qid() + 1);
  cqs_.resize(core.regs.max_qid() + 1);
  features_.volatile_write_cache = core.cfg.volatile_write_cache ? 1 : 0;
}

void Admin::enable(uint64_t asq, uint64_t acq, uint32_t asqs, uint32_t acqs) {
  acq_ = CqState{.size = acqs, .base = acq, .db_off = core_.regs.cq_head_offset(0)};
  asq_ = SqState{.size = asqs, .base = asq, .db_off = core_.regs.sq_tail_offset(0), .cq = &acq_};
  last_scan_ns_ = 0;
  enabled_ = true;
}

void Admin::reset() {
  for (auto& w : workers_) w->drop_all();  // workers forget the queues before we free them
  for (auto& q : sqs_) q.reset();
  for (auto& q : cqs_) q.reset();
  n_sqs_ = 0;
  n_cqs_ = 0;
  aer_cids_.clear();
  features_ = Features{};
  features_.volatile_write_cache = core_.cfg.volatile_write_cache ? 1 : 0;
  queues_allocated_ = false;
  core_.events.reset();
  enabled_ = false;
}

bool Admin::poll(uint64_t now_ns) {
  if (!enabled_) return false;
  bool busy = false;
  for (unsigned n = 0; n < 16 && !core_.fatal.load(std::memory_order_acquire); ++n) {
    if (refresh_cq_head(core_.regs, acq_) == Doorbell::invalid)
      core_.doorbell_error(0, nvme::aer::INFO_INVALID_DOORBELL_VALUE);
    if (refresh_sq_tail(core_.regs, asq_) == Doorbell::invalid)
      core_.doorbell_error(0, nvme::aer::INFO_INVALID_DOORBELL_VALUE);
    if (asq_.head == asq_.tail || !acq_.can_reserve()) break;
    Sqe cmd;
    {
      DmaSpace::Reader::Section s(reader_);
      // The tail doorbell was loaded with acquire: entries before it are complete.
      auto* ring = reinterpret_cast<const Sqe*>(core_.dma->translate(asq_.base, size_t(asq_.size) * sizeof(Sqe)));
      if (!ring) {
        core_.raise_fatal("admin SQ memory is no longer mapped");
        return true;
      }
      std::memcpy(&cmd, ring + asq_.head, sizeof cmd);
    }
    if (++asq_.head == asq_.size) asq_.head = 0;
    ++acq_.reserved;
    busy = true;

    bool drop = false;
    Outcome o = core_.run_command(counters_, 0, cmd, drop, [&] { return execute(cmd); });
    if (drop) {
      if (o.deferred) aer_cids_.pop_back();  // the event will never be reported either
      --acq_.reserved;
      continue;
    }
    if (o.deferred) {
      --acq_.reserved;  // an AER takes a slot only when an event completes it
      continue;
    }
    post(cmd.cid, o.dw0, o.status);
  }
  deliver_events();
  if (now_ns - last_scan_ns_ > 1000000) {
    scan_stray_doorbells();
    last_scan_ns_ = now_ns;
  }
  return busy;
}

bool Admin::post(uint16_t cid, uint32_t dw0, Status st) {
  DmaSpace::Reader::Section s(reader_);
  acq_.ring = reinterpret_cast<nvme::Cqe*>(core_.dma->translate(acq_.base, size_t(acq_.size) * sizeof(nvme::Cqe)));
  if (!acq_.ring) {
    core_.raise_fatal("admin CQ memory is no longer mapped");
    --acq_.reserved;
    return false;
  }
  post_cqe(acq_, 0, uint16_t(asq_.head), cid, dw0, st);
  acq_.ring = nullptr;
  return true;
}

void Admin::deliver_events() {
  while (!aer_cids_.empty() && core_.events.pending()) {
    if (refresh_cq_head(core_.regs, acq_) == Doorbell::invalid)
      core_.doorbell_error(0, nvme::aer::INFO_INVALID_DOORBELL_VALUE);
    if (!acq_.can_reserve()) return;  // admin CQ full: report once the host makes room
    auto dw0 = core_.events.take();
    if (!dw0) return;
    uint16_t cid = aer_cids_.front();
    aer_cids_.erase(aer_cids_.begin());
    ++acq_.reserved;
    post(cid, *dw0, Status{});
  }
}

// A doorbell of a queue that does not exist: report it and clear it so that the next
// such write is noticed too (registers cannot trap writes; the value is all we see).
void Admin::scan_stray_doorbells() {
  const RegisterFile& r = core_.regs;
  for (uint32_t qid = 1; qid <= r.max_qid(); ++qid) {
    if (!sqs_[qid]) {
      uint32_t off = r.sq_tail_offset(uint16_t(qid)), v = r.load(off);
      if (v && r.compare_exchange(off, v, 0)) core_.doorbell_error(uint16_t(qid), nvme::aer::INFO_INVALID_DOORBELL_REGISTER);
    }
    if (!cqs_[qid]) {
      uint32_t off = r.cq_head_offset(uint16_t(qid)), v = r.load(off);
      if (v && r.compare_exchange(off, v, 0)) core_.doorbell_error(uint16_t(qid), nvme::aer::INFO_INVALID_DOORBELL_REGISTER);
    }
  }
}

Outcome Admin::execute(const Sqe& cmd) {
  ThreadCounters::bump(counters_.commands);
  if (nvme::fuse(cmd.flags)) return fail(sc::INVALID_FIELD);
  if (nvme::psdt(cmd.flags) != 0) return fail(sc::INVALID_FIELD);  // admin commands use PRPs only
  switch (cmd.opc) {
    case nvme::admin::IDENTIFY: return identify(cmd);
    case nvme::admin::CREATE_IO_CQ: return create_cq(cmd);
    case nvme::admin::CREATE_IO_SQ: return create_sq(cmd);
    case nvme::admin::DELETE_IO_SQ: return delete_sq(cmd);
    case nvme::admin::DELETE_IO_CQ: return delete_cq(cmd);
    case nvme::admin::GET_FEATURES: return get_features(cmd);
    case nvme::admin::SET_FEATURES: return set_features(cmd);
    case nvme::admin::GET_LOG_PAGE: return get_log_page(cmd);
    case nvme::admin::ASYNC_EVENT_REQUEST: return async_event_request(cmd);
    // Every command completes as soon as it is fetched, so there is never anything
    // left to abort: dword 0 bit 0 set = "command not aborted" (best effort per spec).
    case nvme::admin::ABORT: return Outcome{1};
    case nvme::admin::KEEP_ALIVE: return Outcome{};
    case nvme::admin::VIRTUALIZATION_MANAGEMENT:
      if (!virt_.enabled()) return fail(sc::INVALID_OPCODE);
      return virt_.manage(cmd);
    default: return fail(sc::INVALID_OPCODE);
  }
}

Status Admin::to_host(const Sqe& cmd, const void* data, size_t len, size_t transfer_len) {
  DmaSpace::Reader::Section s(reader_);
  Status st = map_data(*core_.dma, cmd, transfer_len, core_.page_shift.load(std::memory_order_relaxed), false, segs_);
  if (!st.ok()) return st;
  copy_to_host(segs_, static_cast<const uint8_t*>(data), std::min(len, transfer_len));
  return Status{};
}

// ---- Identify ---------------------------------------------------------------------

void Admin::fill_identify_controller(uint8_t* out) const {
  auto& id = *reinterpret_cast<nvme::IdentifyController*>(out);
  const EmuConfig& c = core_.cfg;
  pad_copy(id.sn, sizeof id.sn, c.serial);
  pad_copy(id.mn, sizeof id.mn, c.model);
  pad_copy(id.fr, sizeof id.fr, c.firmware);
  id.rab = 6;
  id.mdts = c.mdts;
  id.cntlid = 1;
  id.ver = nvme::Version::make(2, 0, 0);
  id.cntrltype = 1;  // I/O controller
  id.acl = 3;        // 4 concurrent Aborts (0-based)
  id.aerl = 3;       // 4 outstanding Asynchronous Event Requests (0-based)
  id.frmw = 0x03;    // one firmware slot, read-only
  id.lpa = 0x04;     // extended Get Log Page (NUMDU, offsets)
  id.elpe = ErrorLog::ENTRIES - 1;
  id.wctemp = 0x157;
  id.cctemp = 0x175;
  id.sqes = 0x66;  // 64-byte SQEs only
  id.cqes = 0x44;  // 16-byte CQEs only
  id.nn = uint32_t(core_.namespaces.size());
  if (virt_.enabled()) id.oacs |= nvme::oacs::VIRTUALIZATION_MANAGEMENT;
  id.oncs = nvme::oncs::COMPARE | nvme::oncs::DATASET_MANAGEMENT | nvme::oncs::WRITE_ZEROES;
  id.vwc = c.volatile_write_cache ? 0x07 : 0x00;  // present; Flush with NSID FFFFFFFFh supported
  id.sgls = c.sgl ? 0x1u : 0u;                   // SGLs supported, no alignment requirement
  std::string nqn = "nqn.2024-01.io.aisio:emu:" + c.serial;
  std::memcpy(id.subnqn, nqn.data(), std::min(nqn.size(), sizeof id.subnqn - 1));
  uint16_t mp = 2500;  // power state 0: 25.00 W
  std::memcpy(id.psd, &mp, 2);
}

void Admin::fill_identify_namespace(const Namespace& ns, uint8_t* out) const {
  auto& id = *reinterpret_cast<nvme::IdentifyNamespace*>(out);
  id.nsze = id.ncap = id.nuse = ns.nsze();
  id.nlbaf = 0;
  id.flbas = 0;
  id.dlfeat = 0x09;  // deallocated blocks read as zeros; Write Zeroes honours DEAC
  put_u128(id.nvmcap, ns.nsze() << ns.lba_shift());
  id.lbaf[0].lbads = uint8_t(ns.lba_shift());
  uint64_t h = fnv1a(core_.cfg.serial) ^ ns.nsid();
  std::memcpy(id.nguid, &h, 8);
  uint64_t h2 = fnv1a(std::to_string(ns.nsid()), h);
  std::memcpy(id.nguid + 8, &h2, 8);
  std::memcpy(id.eui64, &h2, 8);
}

Outcome Admin::identify(const Sqe& cmd) {
  alignas(8) uint8_t buf[4096] = {};
  uint8_t cns = cmd.cdw10 & 0xFF;
  switch (cns) {
    case nvme::cns::CONTROLLER: fill_identify_controller(buf); break;
    case nvme::cns::NAMESPACE: {
      Namespace* ns = core_.ns(cmd.nsid);
      if (!ns) return fail(sc::INVALID_NAMESPACE_OR_FORMAT);  // FFFFFFFFh too: no namespace management
      fill_identify_namespace(*ns, buf);
      break;
    }
    case nvme::cns::ACTIVE_NSID_LIST: {
      if (cmd.nsid >= 0xFFFFFFFEu) return fail(sc::INVALID_NAMESPACE_OR_FORMAT);
      uint32_t n = 0;
      for (uint32_t id = cmd.nsid + 1; id <= core_.namespaces.size() && n < 1024; ++id, ++n)
        std::memcpy(buf + 4 * n, &id, 4);
      break;
    }
    case nvme::cns::NS_ID_DESCRIPTOR_LIST: {
      Namespace* ns = core_.ns(cmd.nsid);
      if (!ns) return fail(sc::INVALID_NAMESPACE_OR_FORMAT);
      alignas(8) uint8_t idns[4096] = {};
      fill_identify_namespace(*ns, idns);
      auto& n = *reinterpret_cast<nvme::IdentifyNamespace*>(idns);
      uint8_t* p = buf;
      auto add = [&](uint8_t type, const void* v, uint8_t len) {
        p[0] = type;
        p[1] = len;
        std::memcpy(p + 4, v, len);
        p += 4 + len;
      };
      add(nvme::nidt::EUI64, n.eui64, 8);
      add(nvme::nidt::NGUID, n.nguid, 16);
      uint8_t csi = 0;  // NVM command set
      add(nvme::nidt::CSI, &csi, 1);
      break;
    }
    case nvme::cns::PRIMARY_CONTROLLER_CAPS:
      if (!virt_.enabled()) return fail(sc::INVALID_FIELD);
      virt_.fill_primary_caps(buf);
      break;
    case nvme::cns::SECONDARY_CONTROLLER_LIST:
      if (!virt_.enabled()) return fail(sc::INVALID_FIELD);
      virt_.fill_secondary_list(uint16_t(cmd.cdw10 >> 16), buf);
      break;
    default: return fail(sc::INVALID_FIELD);
  }
  return Outcome{0, to_host(cmd, buf, sizeof buf, sizeof buf)};
}

// ---- Queue management ---------------------------------------------------------------

Outcome Admin::create_cq(const Sqe& cmd) {
  uint32_t qid = cmd.cdw10 & 0xFFFF, entries = (cmd.cdw10 >> 16) + 1;
  bool pc = cmd.cdw11 & 1, ien = cmd.cdw11 & 2;
  uint16_t iv = uint16_t(cmd.cdw11 >> 16);
  if (qid == 0 || qid > cq_limit() || qid >= cqs_.size() || cqs_[qid])
    return fail_specific(sc::INVALID_QUEUE_IDENTIFIER);
  if (entries < 2 || entries > core_.cfg.mqes + 1u) return fail_specific(sc::INVALID_QUEUE_SIZE);
  // acquire load of CC after the doorbell: a CC write before this command is seen.
  if (nvme::cc::get_iocqes(core_.regs.load(nvme::reg::CC)) != nvme::CQE_SIZE_LOG2)
    return fail_specific(sc::INVALID_QUEUE_SIZE);  // CC.IOCQES not (yet) 16-byte entries
  if (!pc) return fail(sc::INVALID_FIELD);  // CAP.CQR = 1
  if (ien && iv > core_.cfg.max_io_queues) return fail_specific(sc::INVALID_INTERRUPT_VECTOR);
  uint64_t page_mask = (uint64_t(1) << core_.page_shift.load(std::memory_order_relaxed)) - 1;
  if (cmd.prp1 & page_mask) return fail(sc::PRP_OFFSET_INVALID);
  if (!core_.dma->translate(cmd.prp1, size_t(entries) * sizeof(nvme::Cqe))) return Outcome{0, transfer_error()};
  auto cq = std::make_unique<CqState>();
  cq->qid = uint16_t(qid);
  cq->size = entries;
  cq->base = cmd.prp1;
  cq->db_off = core_.regs.cq_head_offset(uint16_t(qid));
  cq->ien = ien;
  cq->iv = iv;
  core_.regs.store(cq->db_off, 0);  // a new queue starts at head 0 whatever was written before
  worker_for(uint16_t(qid)).add_cq(cq.get());
  cqs_[qid] = std::move(cq);
  ++n_cqs_;
  return Outcome{};
}

Outcome Admin::create_sq(const Sqe& cmd) {
  uint32_t qid = cmd.cdw10 & 0xFFFF, entries = (cmd.cdw10 >> 16) + 1;
  bool pc = cmd.cdw11 & 1;
  uint32_t cqid = cmd.cdw11 >> 16;
  if (qid == 0 || qid > sq_limit() || qid >= sqs_.size() || sqs_[qid])
    return fail_specific(sc::INVALID_QUEUE_IDENTIFIER);
  if (entries < 2 || entries > core_.cfg.mqes + 1u) return fail_specific(sc::INVALID_QUEUE_SIZE);
  if (nvme::cc::get_iosqes(core_.regs.load(nvme::reg::CC)) != nvme::SQE_SIZE_LOG2)
    return fail_specific(sc::INVALID_QUEUE_SIZE);  // CC.IOSQES not (yet) 64-byte entries
  if (cqid == 0 || cqid >= cqs_.size() || !cqs_[cqid]) return fail_specific(sc::COMPLETION_QUEUE_INVALID);
  if (!pc) return fail(sc::INVALID_FIELD);  // CAP.CQR = 1
  uint64_t page_mask = (uint64_t(1) << core_.page_shift.load(std::memory_order_relaxed)) - 1;
  if (cmd.prp1 & page_mask) return fail(sc::PRP_OFFSET_INVALID);
  if (!core_.dma->translate(cmd.prp1, size_t(entries) * sizeof(Sqe))) return Outcome{0, transfer_error()};
  auto sq = std::make_unique<SqState>();
  sq->qid = uint16_t(qid);
  sq->cqid = uint16_t(cqid);
  sq->size = entries;
  sq->base = cmd.prp1;
  sq->db_off = core_.regs.sq_tail_offset(uint16_t(qid));
  sq->cq = cqs_[cqid].get();
  core_.regs.store(sq->db_off, 0);
  ++sq->cq->sq_count;
  worker_for(uint16_t(cqid)).add_sq(sq.get());
  sqs_[qid] = std::move(sq);
  ++n_sqs_;
  return Outcome{};
}

Outcome Admin::delete_sq(const Sqe& cmd) {
  uint32_t qid = cmd.cdw10 & 0xFFFF;
  if (qid == 0 || qid >= sqs_.size() || !sqs_[qid]) return fail_specific(sc::INVALID_QUEUE_IDENTIFIER);
  SqState* sq = sqs_[qid].get();
  // Returns after the worker completed the SQ's held commands as aborted and let go of it.
  worker_for(sq->cqid).remove_sq(sq);
  --sq->cq->sq_count;
  sqs_[qid].reset();
  --n_sqs_;
  core_.regs.store(core_.regs.sq_tail_offset(uint16_t(qid)), 0);
  return Outcome{};
}

Outcome Admin::delete_cq(const Sqe& cmd) {
  uint32_t qid = cmd.cdw10 & 0xFFFF;
  if (qid == 0 || qid >= cqs_.size() || !cqs_[qid]) return fail_specific(sc::INVALID_QUEUE_IDENTIFIER);
  if (cqs_[qid]->sq_count) return fail_specific(sc::INVALID_QUEUE_DELETION);
  worker_for(uint16_t(qid)).remove_cq(cqs_[qid].get());
  cqs_[qid].reset();
  --n_cqs_;
  core_.regs.store(core_.regs.cq_head_offset(uint16_t(qid)), 0);
  return Outcome{};
}

// ---- Features -----------------------------------------------------------------------

Outcome Admin::get_features(const Sqe& cmd) {
  uint8_t fid = cmd.cdw10 & 0xFF;
  uint32_t sel = nvme::feature::get_sel(cmd.cdw10);
  if (sel > 3) return fail(sc::INVALID_FIELD);
  const Features defaults{};
  const Features& f = sel == 1 ? defaults : features_;  // no saved values: saved = current
  uint32_t v = 0;
  switch (fid) {
    case nvme::feature::ARBITRATION: v = f.arbitration; break;
    case nvme::feature::POWER_MANAGEMENT: v = f.power_management; break;
    case nvme::feature::TEMPERATURE_THRESHOLD: {
      uint32_t thsel = (cmd.cdw11 >> 20) & 3;
      if (thsel > 1) return fail(sc::INVALID_FIELD);
      v = f.temp_threshold[thsel] | (cmd.cdw11 & 0x3F0000u);
      break;
    }
    case nvme::feature::VOLATILE_WRITE_CACHE:
      v = sel == 1 ? (core_.cfg.volatile_write_cache ? 1 : 0) : f.volatile_write_cache;
      break;
    case nvme::feature::NUMBER_OF_QUEUES: v = (sq_limit() - 1) | ((cq_limit() - 1) << 16); break;
    case nvme::feature::INTERRUPT_COALESCING: v = f.interrupt_coalescing; break;
    case nvme::feature::INTERRUPT_VECTOR_CONFIG: {
      uint32_t iv = cmd.cdw11 & 0xFFFF;
      if (iv > core_.cfg.max_io_queues) return fail(sc::INVALID_FIELD);
      v = iv;
      break;
    }
    case nvme::feature::WRITE_ATOMICITY: v = f.write_atomicity; break;
    case nvme::feature::ASYNC_EVENT_CONFIG: v = f.async_event_config; break;
    default: return fail(sc::INVALID_FIELD);
  }
  if (sel == 3) v = 0x4;  // supported capabilities: changeable, not saveable, not per namespace
  return Outcome{v};
}

Outcome Admin::set_features(const Sqe& cmd) {
  uint8_t fid = cmd.cdw10 & 0xFF;
  if (cmd.cdw10 & nvme::feature::SET_SAVE) return fail_specific(sc::FEATURE_NOT_SAVEABLE);
  uint32_t v = cmd.cdw11;
  switch (fid) {
    case nvme::feature::ARBITRATION: features_.arbitration = v; return Outcome{};
    case nvme::feature::POWER_MANAGEMENT:
      if ((v & 0x1F) != 0) return fail(sc::INVALID_FIELD);  // only power state 0 (NPSS = 0)
      features_.power_management = v;
      return Outcome{};
    case nvme::feature::TEMPERATURE_THRESHOLD: {
      uint32_t thsel = (v >> 20) & 3;
      if (thsel > 1) return fail(sc::INVALID_FIELD);
      features_.temp_threshold[thsel] = uint16_t(v);
      return Outcome{};
    }
    case nvme::feature::VOLATILE_WRITE_CACHE:
      if (!core_.cfg.volatile_write_cache) return fail(sc::INVALID_FIELD);
      features_.volatile_write_cache = v & 1;
      return Outcome{};
    case nvme::feature::NUMBER_OF_QUEUES: {
      uint32_t nsqr = v & 0xFFFF, ncqr = v >> 16;
      if (nsqr == 0xFFFF || ncqr == 0xFFFF) return fail(sc::INVALID_FIELD);
      // Only during initialization, before any I/O queue exists.
      if (n_sqs_ || n_cqs_) return fail(sc::COMMAND_SEQUENCE_ERROR);
      // The allocation does not change until the next reset; a repeat reports it again.
      if (!queues_allocated_) {
        nsqa_ = std::min<uint32_t>(nsqr + 1, core_.cfg.max_io_queues);
        ncqa_ = std::min<uint32_t>(ncqr + 1, core_.cfg.max_io_queues);
        queues_allocated_ = true;
      }
      return Outcome{(nsqa_ - 1) | ((ncqa_ - 1) << 16)};
    }
    case nvme::feature::INTERRUPT_COALESCING: features_.interrupt_coalescing = v & 0xFFFF; return Outcome{};
    case nvme::feature::INTERRUPT_VECTOR_CONFIG:
      if ((v & 0xFFFF) > core_.cfg.max_io_queues) return fail(sc::INVALID_FIELD);
      return Outcome{};
    case nvme::feature::WRITE_ATOMICITY: features_.write_atomicity = v & 1; return Outcome{};
    case nvme::feature::ASYNC_EVENT_CONFIG: features_.async_event_config = v; return Outcome{};
    default: return fail(sc::INVALID_FIELD);
  }
}

// ---- Log pages and events -----------------------------------------------------------

Outcome Admin::get_log_page(const Sqe& cmd) {
  uint8_t lid = cmd.cdw10 & 0xFF;
  uint64_t numd = (cmd.cdw10 >> 16) | (uint64_t(cmd.cdw11 & 0xFFFF) << 16);
  uint64_t len = (numd + 1) * 4;
  uint64_t offset = cmd.cdw12 | (uint64_t(cmd.cdw13) << 32);
  std::vector<uint8_t> log;
  switch (lid) {
    case nvme::log_page::ERROR_INFO:
      log.resize(ErrorLog::ENTRIES * sizeof(nvme::ErrorLogEntry));
      core_.errors.snapshot(reinterpret_cast<nvme::ErrorLogEntry*>(log.data()));
      break;
    case nvme::log_page::SMART: {
      EmuStats s;
      counters_.add_to(s, true);
      for (auto& w : workers_) w->counters().add_to(s, false);
      nvme::SmartLog smart{};
      smart.composite_temperature = 313;  // 40 C
      smart.available_spare = 100;
      smart.available_spare_threshold = 10;
      // Data units are thousands of 512-byte units, rounded up.
      put_u128(smart.data_units_read, (s.bytes_read + 511999) / 512000);
      put_u128(smart.data_units_written, (s.bytes_written + 511999) / 512000);
      put_u128(smart.host_read_commands, s.read_commands);
      put_u128(smart.host_write_commands, s.write_commands);
      put_u128(smart.power_cycles, 1);
      put_u128(smart.num_err_log_entries, core_.errors.count());
      log.resize(sizeof smart);
      std::memcpy(log.data(), &smart, sizeof smart);
      break;
    }
    case nvme::log_page::FIRMWARE_SLOT:
      log.assign(512, 0);
      log[0] = 0x01;  // AFI: slot 1 active
      pad_copy(reinterpret_cast<char*>(log.data() + 8), 8, core_.cfg.firmware);
      break;
    default: return fail_specific(sc::INVALID_LOG_PAGE);
  }
  if ((offset & 3) || offset >= log.size()) return fail(sc::INVALID_FIELD);
  uint64_t limit = core_.mdts_bytes() ? core_.mdts_bytes() : (16u << 20);
  if (len > limit) return fail(sc::INVALID_FIELD);
  std::vector<uint8_t> out(len, 0);
  std::memcpy(out.data(), log.data() + offset, std::min<uint64_t>(len, log.size() - offset));
  Status st = to_host(cmd, out.data(), out.size(), out.size());
  if (st.ok() && !(cmd.cdw10 & nvme::log_page::RAE)) core_.events.log_page_read(lid);
  return Outcome{0, st};
}

Outcome Admin::async_event_request(const Sqe& cmd) {
  if (aer_cids_.size() >= 4u) return fail_specific(sc::ASYNC_EVENT_LIMIT_EXCEEDED);  // AERL + 1
  aer_cids_.push_back(cmd.cid);
  return Outcome{0, Status{}, true};
}

}  // namespace aisio::emu
