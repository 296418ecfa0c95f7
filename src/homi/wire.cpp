#include "homi/wire.hpp"

#include <cstring>
#include <type_traits>

#include "common/error.hpp"

namespace aisio::homi::wire {

namespace {
[[noreturn]] void bad(const std::string& what) { throw Error(Errc::protocol, "homi protocol: " + what); }
}  // namespace

const char* type_name(Type t) {
  switch (t) {
#define AISIO_HOMI_NAME(name, T, code, fds) \
  case Type::name: return #name;
    AISIO_HOMI_MESSAGES(AISIO_HOMI_NAME)
#undef AISIO_HOMI_NAME
  }
  return "unknown";
}

unsigned fds_of(Type t) {
  switch (t) {
#define AISIO_HOMI_FDS(name, T, code, fds) \
  case Type::name: return fds;
    AISIO_HOMI_MESSAGES(AISIO_HOMI_FDS)
#undef AISIO_HOMI_FDS
  }
  return 0;
}

// ---- Writer / Reader --------------------------------------------------------------

void Writer::put(std::string_view s) {
  if (s.size() > MAX_STRING) bad("string of " + std::to_string(s.size()) + " bytes (limit " + std::to_string(MAX_STRING) + ")");
  put(uint16_t(s.size()));
  buf_.insert(buf_.end(), s.begin(), s.end());
}
void Writer::blob(std::span<const uint8_t> b, size_t) {
  count(b.size());
  buf_.insert(buf_.end(), b.begin(), b.end());
}
void Writer::count(size_t n) {
  if (n > UINT32_MAX) bad("array too long");
  put(uint32_t(n));
}

const uint8_t* Reader::take(size_t n) {
  if (n > left()) bad("message ends inside a field (" + std::to_string(n) + " bytes wanted, " + std::to_string(left()) + " left)");
  const uint8_t* p = p_.data() + pos_;
  pos_ += n;
  return p;
}
void Reader::get(std::string& s) {
  uint16_t n;
  get(n);
  if (n > MAX_STRING) bad("string longer than " + std::to_string(MAX_STRING) + " bytes");
  const uint8_t* p = take(n);
  s.assign(reinterpret_cast<const char*>(p), n);
}
void Reader::blob(std::vector<uint8_t>& v, size_t max) {
  uint32_t n = count(1, max);
  const uint8_t* p = take(n);
  v.assign(p, p + n);
}
uint32_t Reader::count(size_t min_elem, size_t max) {
  uint32_t n;
  get(n);
  if (n > max) bad("array of " + std::to_string(n) + " elements (limit " + std::to_string(max) + ")");
  if (min_elem && uint64_t(n) * min_elem > left())
    bad("array of " + std::to_string(n) + " elements does not fit in the message");
  return n;
}
void Reader::end() const {
  if (left()) bad(std::to_string(left()) + " unexpected bytes after the payload");
}

// ---- Per-message fields -----------------------------------------------------------
// One field list per message, in wire order (protocol.md documents it), run by Writer
// to encode and by Reader to decode; the array minimums and limits are the Reader's.

namespace {

// The message as the Io sees it: read-only when encoding.
template <class Io, class T>
using Ref = std::conditional_t<std::is_same_v<Io, Reader>, T&, const T&>;

template <class Io>
void fields(Io& io, Ref<Io, Header> h) {
  io(h.magic, h.version, h.type, h.length, h.seq);
}

// ListControllers, ReleaseQueueOk, UnregisterDmaOk: a type and nothing else.
template <class Io, class M>
  requires std::is_empty_v<std::remove_const_t<M>>
void fields(Io&, M&) {}

template <class Io>
void fields(Io& io, Ref<Io, Hello> m) {
  io(m.min_version, m.max_version, m.pid, m.client);
}
template <class Io>
void fields(Io& io, Ref<Io, HelloOk> m) {
  io(m.version, m.instance, m.uid, m.gid, m.pid, m.client_id, m.max_message, m.max_queues, m.max_dma_bytes,
     m.daemon);
}

constexpr size_t NS_BYTES = 4 + 4 + 8 + 1;
constexpr size_t CTRL_MIN_BYTES = 4 + 4 * 2 + 4 + 4 + 4 + 4 + 2 + 2 + 4;
template <class Io>
void fields(Io& io, Ref<Io, NamespaceInfo> n) {
  io(n.nsid, n.lba_size, n.nsze, n.has_backing);
}
template <class Io>
void fields(Io& io, Ref<Io, ControllerInfo> c) {
  io(c.index, c.name, c.address, c.model, c.serial, c.kind, c.dma, c.dstrd, c.flags, c.page_size, c.max_transfer,
     c.max_queue_depth, c.queue_limit, c.queues_in_use);
  io.array(c.namespaces, NS_BYTES, 1024, [&](auto& n) { fields(io, n); });
}
template <class Io>
void fields(Io& io, Ref<Io, ListControllersOk> m) {
  io.array(m.controllers, CTRL_MIN_BYTES, 256, [&](auto& c) { fields(io, c); });
}
template <class Io>
void fields(Io& io, Ref<Io, Identify> m) {
  io(m.ctrl, m.cns, m.nsid);
}
template <class Io>
void fields(Io& io, Ref<Io, IdentifyOk> m) {
  io.blob(m.data, IDENTIFY_BYTES);
}
template <class Io>
void fields(Io& io, Ref<Io, AllocQueue> m) {
  io(m.ctrl, m.depth, m.nsid, m.flags, m.sq_bus, m.cq_bus);
  if (m.flags & kAllocGpu) io(m.gpu);  // only then: the bytes without it are as before
}
template <class Io>
void fields(Io& io, Ref<Io, AllocQueueOk> m) {
  io(m.qid, m.depth, m.flags, m.map_offset, m.map_length, m.sq_doorbell, m.cq_doorbell);
  if (m.flags & kGrantGpu) io(m.gpu);
}
template <class Io>
void fields(Io& io, Ref<Io, ReleaseQueue> m) {
  io(m.ctrl, m.qid);
}
template <class Io>
void fields(Io& io, Ref<Io, RegisterDma> m) {
  io(m.ctrl, m.length);
}
template <class Io>
void fields(Io& io, Ref<Io, RegisterDmaOk> m) {
  io(m.region, m.page_shift);
  io.array(m.bus, 8, MAX_BUS_ENTRIES, [&](auto& b) { io(b); });
}
template <class Io>
void fields(Io& io, Ref<Io, UnregisterDma> m) {
  io(m.ctrl, m.region);
}
template <class Io>
void fields(Io& io, Ref<Io, ResolveExtents> m) {
  io(m.flags, m.first, m.max);
}

constexpr size_t EXTENT_BYTES = 8 * 3 + 4;
template <class Io>
void fields(Io& io, Ref<Io, ExtentRecord> e) {
  io(e.logical, e.physical, e.length, e.flags);
}
template <class Io>
void fields(Io& io, Ref<Io, ResolveExtentsOk> m) {
  io(m.ctrl, m.nsid, m.lba_size, m.file_size, m.device_offset, m.total, m.path);
  io.array(m.extents, EXTENT_BYTES, MAX_MESSAGE / EXTENT_BYTES, [&](auto& e) { fields(io, e); });
}
template <class Io>
void fields(Io& io, Ref<Io, Stats> m) {
  io(m.flags);
}

constexpr size_t CLIENT_STAT_MIN = 8 + 12 + 2 + 2 + 8 + 32;
constexpr size_t QUEUE_STAT_MIN = 8 + 4 + 2 + 12 + 8;
constexpr size_t CTRL_STAT_MIN = 4 + 2 + 4 + 1 + 40;
template <class Io>
void fields(Io& io, Ref<Io, ClientStat> c) {
  io(c.id, c.pid, c.uid, c.gid, c.name, c.rule, c.queues, c.regions, c.dma_bytes, c.requests, c.errors,
     c.connected_ms);
}
template <class Io>
void fields(Io& io, Ref<Io, QueueStat> q) {
  io(q.client, q.ctrl, q.qid, q.depth, q.nsid, q.flags, q.age_ms);
  if (q.flags & kAllocGpu) io(q.gpu);
}
template <class Io>
void fields(Io& io, Ref<Io, ControllerStat> c) {
  io(c.index, c.name, c.queues_in_use, c.queue_limit, c.known, c.admin_commands, c.io_commands, c.bytes_read,
     c.bytes_written, c.errors);
}
constexpr size_t UBLK_STAT_MIN = 12 + 2 + 2 + 4 + 4 + 1 + 64;
template <class Io>
void fields(Io& io, Ref<Io, UblkStat> u) {
  io(u.ctrl, u.dev_id, u.nsid, u.path, u.qids, u.queues, u.depth, u.max_io_bytes, u.recovered, u.reads, u.writes,
     u.flushes, u.discards, u.write_zeroes, u.errors, u.bytes_read, u.bytes_written);
}
template <class Io>
void fields(Io& io, Ref<Io, StatsOk> m) {
  io(m.instance, m.uptime_ms, m.queues_total, m.max_queues_total, m.clients_total, m.reclaimed_queues);
  io.array(m.clients, CLIENT_STAT_MIN, 4096, [&](auto& c) { fields(io, c); });
  io.array(m.queues, QUEUE_STAT_MIN, 65536, [&](auto& q) { fields(io, q); });
  io.array(m.controllers, CTRL_STAT_MIN, 256, [&](auto& c) { fields(io, c); });
  // Optional tail (a homid exporting namespaces through ublk): absent when empty, so
  // the bytes of a daemon without exports are those of protocol version 1 as before.
  bool tail = false;
  if constexpr (std::is_same_v<Io, Reader>) tail = io.left() > 0;
  else tail = !m.ublk.empty();
  if (tail) io.array(m.ublk, UBLK_STAT_MIN, 1024, [&](auto& u) { fields(io, u); });
  // One encoding per message: an empty tail is written as no tail.
  if constexpr (std::is_same_v<Io, Reader>)
    if (tail && m.ublk.empty()) bad("stats_ok: empty ublk list present (it is omitted when empty)");
}
constexpr size_t FUNCTION_MIN = 2 * 3 + 2 * 2 + 2 + 2 * 2 + 8 * 2;
template <class Io>
void fields(Io& io, Ref<Io, FunctionInfo> f) {
  io(f.pf, f.pf_address, f.address, f.vfn, f.scid, f.online, f.driver, f.vq, f.vi, f.holder, f.grants);
}
template <class Io>
void fields(Io& io, Ref<Io, ListFunctionsOk> m) {
  io.array(m.functions, FUNCTION_MIN, 4096, [&](auto& f) { fields(io, f); });
}
template <class Io>
void fields(Io& io, Ref<Io, GrantFunction> m) {
  io(m.pf, m.vfn);
}
template <class Io>
void fields(Io& io, Ref<Io, GrantFunctionOk> m) {
  fields(io, m.function);
  io(m.bar_offset, m.bar_size);
}
template <class Io>
void fields(Io& io, Ref<Io, ReleaseFunction> m) {
  io(m.pf, m.vfn);
}
template <class Io>
void fields(Io& io, Ref<Io, ErrorReply> m) {
  io(m.errc, m.text);
}

void write_header(std::vector<uint8_t>& out, const Header& h) {
  Writer w;
  fields(w, h);
  std::memcpy(out.data(), w.bytes().data(), HEADER_SIZE);
}

template <class T>
Body decode_as(Reader& r) {
  T m;
  fields(r, m);
  r.end();
  return m;
}

// The type of each Body alternative, in table order.
constexpr Type kTypes[] = {
#define AISIO_HOMI_TYPE(name, T, code, fds) Type::name,
    AISIO_HOMI_MESSAGES(AISIO_HOMI_TYPE)
#undef AISIO_HOMI_TYPE
};
static_assert(std::size(kTypes) == std::variant_size_v<Body>);

// The Body alternative whose type is t (decode checked t against type_name first).
template <size_t I = 0>
Body decode_body(Type t, Reader& r) {
  if constexpr (I + 1 < std::variant_size_v<Body>)
    if (kTypes[I] != t) return decode_body<I + 1>(t, r);
  return decode_as<std::variant_alternative_t<I, Body>>(r);
}

}  // namespace

Type type_of(const Body& b) { return kTypes[b.index()]; }

std::vector<uint8_t> encode(uint32_t seq, const Body& body) {
  Writer w;
  w.bytes().resize(HEADER_SIZE);
  std::visit([&](const auto& m) { fields(w, m); }, body);
  std::vector<uint8_t>& out = w.bytes();
  if (out.size() > MAX_MESSAGE)
    bad(std::string(type_name(type_of(body))) + " message of " + std::to_string(out.size()) + " bytes exceeds " +
        std::to_string(MAX_MESSAGE));
  Header h;
  h.type = uint16_t(type_of(body));
  h.length = uint32_t(out.size() - HEADER_SIZE);
  h.seq = seq;
  write_header(out, h);
  return std::move(out);
}

bool peek_header(std::span<const uint8_t> packet, Header& h) {
  if (packet.size() < HEADER_SIZE) return false;
  Reader r(packet.first(HEADER_SIZE));
  fields(r, h);
  return true;
}

Message decode(std::span<const uint8_t> packet, unsigned fds) {
  Message m;
  if (packet.size() > MAX_MESSAGE) bad("message of " + std::to_string(packet.size()) + " bytes exceeds " + std::to_string(MAX_MESSAGE));
  if (!peek_header(packet, m.header)) bad("message shorter than its 16-byte header");
  const Header& h = m.header;
  if (h.magic != MAGIC) bad("bad magic (not a homid peer)");
  if (h.version != VERSION)
    bad("protocol version " + std::to_string(h.version) + " (this side speaks " + std::to_string(VERSION) + ")");
  if (h.length != packet.size() - HEADER_SIZE)
    bad("length field says " + std::to_string(h.length) + " payload bytes, the packet holds " +
        std::to_string(packet.size() - HEADER_SIZE));
  Type t = Type(h.type);
  if (std::string_view(type_name(t)) == "unknown") bad("unknown message type " + std::to_string(h.type));
  if (fds != fds_of(t))
    bad(std::string(type_name(t)) + " carries " + std::to_string(fds_of(t)) + " descriptor(s), " +
        std::to_string(fds) + " came with it");
  Reader r(packet.subspan(HEADER_SIZE));
  m.body = decode_body(t, r);
  return m;
}

}  // namespace aisio::homi::wire
