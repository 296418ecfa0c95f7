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

void Writer::u16(uint16_t v) {
  u8(uint8_t(v));
  u8(uint8_t(v >> 8));
}
void Writer::u32(uint32_t v) {
  u16(uint16_t(v));
  u16(uint16_t(v >> 16));
}
void Writer::u64(uint64_t v) {
  u32(uint32_t(v));
  u32(uint32_t(v >> 32));
}
void Writer::str(std::string_view s) {
  if (s.size() > MAX_STRING) bad("string of " + std::to_string(s.size()) + " bytes (limit " + std::to_string(MAX_STRING) + ")");
  u16(uint16_t(s.size()));
  buf_.insert(buf_.end(), s.begin(), s.end());
}
void Writer::blob(std::span<const uint8_t> b) {
  count(b.size());
  buf_.insert(buf_.end(), b.begin(), b.end());
}
void Writer::count(size_t n) {
  if (n > UINT32_MAX) bad("array too long");
  u32(uint32_t(n));
}

const uint8_t* Reader::take(size_t n) {
  if (n > left()) bad("message ends inside a field (" + std::to_string(n) + " bytes wanted, " + std::to_string(left()) + " left)");
  const uint8_t* p = p_.data() + pos_;
  pos_ += n;
  return p;
}
uint8_t Reader::u8() { return *take(1); }
uint16_t Reader::u16() {
  const uint8_t* p = take(2);
  return uint16_t(p[0] | (p[1] << 8));
}
uint32_t Reader::u32() {
  const uint8_t* p = take(4);
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8) | (uint32_t(p[2]) << 16) | (uint32_t(p[3]) << 24);
}
uint64_t Reader::u64() {
  uint64_t lo = u32();
  return lo | (uint64_t(u32()) << 32);
}
std::string Reader::str() {
  uint16_t n = u16();
  if (n > MAX_STRING) bad("string longer than " + std::to_string(MAX_STRING) + " bytes");
  const uint8_t* p = take(n);
  return std::string(reinterpret_cast<const char*>(p), n);
}
std::vector<uint8_t> Reader::blob(size_t max) {
  uint32_t n = count(1, max);
  const uint8_t* p = take(n);
  return std::vector<uint8_t>(p, p + n);
}
uint32_t Reader::count(size_t min_elem, size_t max) {
  uint32_t n = u32();
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
  io.u32(h.magic);
  io.u16(h.version);
  io.u16(h.type);
  io.u32(h.length);
  io.u32(h.seq);
}

// ListControllers, ReleaseQueueOk, UnregisterDmaOk: a type and nothing else.
template <class Io, class M>
  requires std::is_empty_v<std::remove_const_t<M>>
void fields(Io&, M&) {}

template <class Io>
void fields(Io& io, Ref<Io, Hello> m) {
  io.u16(m.min_version);
  io.u16(m.max_version);
  io.u32(m.pid);
  io.str(m.client);
}
template <class Io>
void fields(Io& io, Ref<Io, HelloOk> m) {
  io.u16(m.version);
  io.u64(m.instance);
  io.u32(m.uid);
  io.u32(m.gid);
  io.u32(m.pid);
  io.u64(m.client_id);
  io.u32(m.max_message);
  io.u32(m.max_queues);
  io.u64(m.max_dma_bytes);
  io.str(m.daemon);
}

constexpr size_t NS_BYTES = 4 + 4 + 8 + 1;
constexpr size_t CTRL_MIN_BYTES = 4 + 4 * 2 + 4 + 4 + 4 + 4 + 2 + 2 + 4;
template <class Io>
void fields(Io& io, Ref<Io, NamespaceInfo> n) {
  io.u32(n.nsid);
  io.u32(n.lba_size);
  io.u64(n.nsze);
  io.u8(n.has_backing);
}
template <class Io>
void fields(Io& io, Ref<Io, ControllerInfo> c) {
  io.u32(c.index);
  io.str(c.name);
  io.str(c.address);
  io.str(c.model);
  io.str(c.serial);
  io.u8(c.kind);
  io.u8(c.dma);
  io.u8(c.dstrd);
  io.u8(c.flags);
  io.u32(c.page_size);
  io.u32(c.max_transfer);
  io.u32(c.max_queue_depth);
  io.u16(c.queue_limit);
  io.u16(c.queues_in_use);
  io.array(c.namespaces, NS_BYTES, 1024, [&](auto& n) { fields(io, n); });
}
template <class Io>
void fields(Io& io, Ref<Io, ListControllersOk> m) {
  io.array(m.controllers, CTRL_MIN_BYTES, 256, [&](auto& c) { fields(io, c); });
}
template <class Io>
void fields(Io& io, Ref<Io, Identify> m) {
  io.u32(m.ctrl);
  io.u8(m.cns);
  io.u32(m.nsid);
}
template <class Io>
void fields(Io& io, Ref<Io, IdentifyOk> m) {
  io.blob(m.data, IDENTIFY_BYTES);
}
template <class Io>
void fields(Io& io, Ref<Io, AllocQueue> m) {
  io.u32(m.ctrl);
  io.u32(m.depth);
  io.u32(m.nsid);
  io.u32(m.flags);
  io.u64(m.sq_bus);
  io.u64(m.cq_bus);
  if (m.flags & kAllocGpu) io.u32(m.gpu);  // only then: the bytes without it are as before
}
template <class Io>
void fields(Io& io, Ref<Io, AllocQueueOk> m) {
  io.u16(m.qid);
  io.u32(m.depth);
  io.u32(m.flags);
  io.u64(m.map_offset);
  io.u64(m.map_length);
  io.u32(m.sq_doorbell);
  io.u32(m.cq_doorbell);
  if (m.flags & kGrantGpu) io.u32(m.gpu);
}
template <class Io>
void fields(Io& io, Ref<Io, ReleaseQueue> m) {
  io.u32(m.ctrl);
  io.u16(m.qid);
}
template <class Io>
void fields(Io& io, Ref<Io, RegisterDma> m) {
  io.u32(m.ctrl);
  io.u64(m.length);
}
template <class Io>
void fields(Io& io, Ref<Io, RegisterDmaOk> m) {
  io.u64(m.region);
  io.u32(m.page_shift);
  io.array(m.bus, 8, MAX_BUS_ENTRIES, [&](auto& b) { io.u64(b); });
}
template <class Io>
void fields(Io& io, Ref<Io, UnregisterDma> m) {
  io.u32(m.ctrl);
  io.u64(m.region);
}
template <class Io>
void fields(Io& io, Ref<Io, ResolveExtents> m) {
  io.u32(m.flags);
  io.u64(m.first);
  io.u32(m.max);
}

constexpr size_t EXTENT_BYTES = 8 * 3 + 4;
template <class Io>
void fields(Io& io, Ref<Io, ExtentRecord> e) {
  io.u64(e.logical);
  io.u64(e.physical);
  io.u64(e.length);
  io.u32(e.flags);
}
template <class Io>
void fields(Io& io, Ref<Io, ResolveExtentsOk> m) {
  io.u32(m.ctrl);
  io.u32(m.nsid);
  io.u32(m.lba_size);
  io.u64(m.file_size);
  io.u64(m.device_offset);
  io.u64(m.total);
  io.str(m.path);
  io.array(m.extents, EXTENT_BYTES, MAX_MESSAGE / EXTENT_BYTES, [&](auto& e) { fields(io, e); });
}
template <class Io>
void fields(Io& io, Ref<Io, Stats> m) {
  io.u32(m.flags);
}

constexpr size_t CLIENT_STAT_MIN = 8 + 12 + 2 + 2 + 8 + 32;
constexpr size_t QUEUE_STAT_MIN = 8 + 4 + 2 + 12 + 8;
constexpr size_t CTRL_STAT_MIN = 4 + 2 + 4 + 1 + 40;
template <class Io>
void fields(Io& io, Ref<Io, ClientStat> c) {
  io.u64(c.id);
  io.u32(c.pid);
  io.u32(c.uid);
  io.u32(c.gid);
  io.str(c.name);
  io.str(c.rule);
  io.u32(c.queues);
  io.u32(c.regions);
  io.u64(c.dma_bytes);
  io.u64(c.requests);
  io.u64(c.errors);
  io.u64(c.connected_ms);
}
template <class Io>
void fields(Io& io, Ref<Io, QueueStat> q) {
  io.u64(q.client);
  io.u32(q.ctrl);
  io.u16(q.qid);
  io.u32(q.depth);
  io.u32(q.nsid);
  io.u32(q.flags);
  io.u64(q.age_ms);
  if (q.flags & kAllocGpu) io.u32(q.gpu);
}
template <class Io>
void fields(Io& io, Ref<Io, ControllerStat> c) {
  io.u32(c.index);
  io.str(c.name);
  io.u16(c.queues_in_use);
  io.u16(c.queue_limit);
  io.u8(c.known);
  io.u64(c.admin_commands);
  io.u64(c.io_commands);
  io.u64(c.bytes_read);
  io.u64(c.bytes_written);
  io.u64(c.errors);
}
constexpr size_t UBLK_STAT_MIN = 12 + 2 + 2 + 4 + 4 + 1 + 64;
template <class Io>
void fields(Io& io, Ref<Io, UblkStat> u) {
  io.u32(u.ctrl);
  io.u32(u.dev_id);
  io.u32(u.nsid);
  io.str(u.path);
  io.str(u.qids);
  io.u16(u.queues);
  io.u16(u.depth);
  io.u32(u.max_io_bytes);
  io.u8(u.recovered);
  io.u64(u.reads);
  io.u64(u.writes);
  io.u64(u.flushes);
  io.u64(u.discards);
  io.u64(u.write_zeroes);
  io.u64(u.errors);
  io.u64(u.bytes_read);
  io.u64(u.bytes_written);
}
template <class Io>
void fields(Io& io, Ref<Io, StatsOk> m) {
  io.u64(m.instance);
  io.u64(m.uptime_ms);
  io.u32(m.queues_total);
  io.u32(m.max_queues_total);
  io.u64(m.clients_total);
  io.u64(m.reclaimed_queues);
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
  io.str(f.pf);
  io.str(f.pf_address);
  io.str(f.address);
  io.u16(f.vfn);
  io.u16(f.scid);
  io.u8(f.online);
  io.u8(f.driver);
  io.u16(f.vq);
  io.u16(f.vi);
  io.u64(f.holder);
  io.u64(f.grants);
}
template <class Io>
void fields(Io& io, Ref<Io, ListFunctionsOk> m) {
  io.array(m.functions, FUNCTION_MIN, 4096, [&](auto& f) { fields(io, f); });
}
template <class Io>
void fields(Io& io, Ref<Io, GrantFunction> m) {
  io.str(m.pf);
  io.u16(m.vfn);
}
template <class Io>
void fields(Io& io, Ref<Io, GrantFunctionOk> m) {
  fields(io, m.function);
  io.u64(m.bar_offset);
  io.u64(m.bar_size);
}
template <class Io>
void fields(Io& io, Ref<Io, ReleaseFunction> m) {
  io.str(m.pf);
  io.u16(m.vfn);
}
template <class Io>
void fields(Io& io, Ref<Io, ErrorReply> m) {
  io.i32(m.errc);
  io.str(m.text);
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
