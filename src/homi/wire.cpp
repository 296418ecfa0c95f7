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
    case Type::hello: return "hello";
    case Type::hello_ok: return "hello_ok";
    case Type::list_controllers: return "list_controllers";
    case Type::list_controllers_ok: return "list_controllers_ok";
    case Type::identify: return "identify";
    case Type::identify_ok: return "identify_ok";
    case Type::alloc_queue: return "alloc_queue";
    case Type::alloc_queue_ok: return "alloc_queue_ok";
    case Type::release_queue: return "release_queue";
    case Type::release_queue_ok: return "release_queue_ok";
    case Type::register_dma: return "register_dma";
    case Type::register_dma_ok: return "register_dma_ok";
    case Type::unregister_dma: return "unregister_dma";
    case Type::unregister_dma_ok: return "unregister_dma_ok";
    case Type::resolve_extents: return "resolve_extents";
    case Type::resolve_extents_ok: return "resolve_extents_ok";
    case Type::stats: return "stats";
    case Type::stats_ok: return "stats_ok";
    case Type::error: return "error";
  }
  return "unknown";
}

unsigned fds_of(Type t) {
  switch (t) {
    case Type::alloc_queue_ok:
    case Type::register_dma:
    case Type::resolve_extents: return 1;
    default: return 0;
  }
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
// put/get pairs must list the same fields in the same order (protocol.md documents it).

namespace {

void put(Writer& w, const Hello& m) {
  w.u16(m.min_version);
  w.u16(m.max_version);
  w.u32(m.pid);
  w.str(m.client);
}
void get(Reader& r, Hello& m) {
  m.min_version = r.u16();
  m.max_version = r.u16();
  m.pid = r.u32();
  m.client = r.str();
}
void put(Writer& w, const HelloOk& m) {
  w.u16(m.version);
  w.u64(m.instance);
  w.u32(m.uid);
  w.u32(m.gid);
  w.u32(m.pid);
  w.u64(m.client_id);
  w.u32(m.max_message);
  w.u32(m.max_queues);
  w.u64(m.max_dma_bytes);
  w.str(m.daemon);
}
void get(Reader& r, HelloOk& m) {
  m.version = r.u16();
  m.instance = r.u64();
  m.uid = r.u32();
  m.gid = r.u32();
  m.pid = r.u32();
  m.client_id = r.u64();
  m.max_message = r.u32();
  m.max_queues = r.u32();
  m.max_dma_bytes = r.u64();
  m.daemon = r.str();
}
void put(Writer&, const ListControllers&) {}
void get(Reader&, ListControllers&) {}

constexpr size_t NS_BYTES = 4 + 4 + 8 + 1;
constexpr size_t CTRL_MIN_BYTES = 4 + 4 * 2 + 4 + 4 + 4 + 4 + 2 + 2 + 4;
void put(Writer& w, const ControllerInfo& c) {
  w.u32(c.index);
  w.str(c.name);
  w.str(c.address);
  w.str(c.model);
  w.str(c.serial);
  w.u8(c.kind);
  w.u8(c.dma);
  w.u8(c.dstrd);
  w.u8(c.flags);
  w.u32(c.page_size);
  w.u32(c.max_transfer);
  w.u32(c.max_queue_depth);
  w.u16(c.queue_limit);
  w.u16(c.queues_in_use);
  w.count(c.namespaces.size());
  for (auto& n : c.namespaces) {
    w.u32(n.nsid);
    w.u32(n.lba_size);
    w.u64(n.nsze);
    w.u8(n.has_backing);
  }
}
void get(Reader& r, ControllerInfo& c) {
  c.index = r.u32();
  c.name = r.str();
  c.address = r.str();
  c.model = r.str();
  c.serial = r.str();
  c.kind = r.u8();
  c.dma = r.u8();
  c.dstrd = r.u8();
  c.flags = r.u8();
  c.page_size = r.u32();
  c.max_transfer = r.u32();
  c.max_queue_depth = r.u32();
  c.queue_limit = r.u16();
  c.queues_in_use = r.u16();
  uint32_t n = r.count(NS_BYTES, 1024);
  c.namespaces.resize(n);
  for (auto& ns : c.namespaces) {
    ns.nsid = r.u32();
    ns.lba_size = r.u32();
    ns.nsze = r.u64();
    ns.has_backing = r.u8();
  }
}
void put(Writer& w, const ListControllersOk& m) {
  w.count(m.controllers.size());
  for (auto& c : m.controllers) put(w, c);
}
void get(Reader& r, ListControllersOk& m) {
  m.controllers.resize(r.count(CTRL_MIN_BYTES, 256));
  for (auto& c : m.controllers) get(r, c);
}
void put(Writer& w, const Identify& m) {
  w.u32(m.ctrl);
  w.u8(m.cns);
  w.u32(m.nsid);
}
void get(Reader& r, Identify& m) {
  m.ctrl = r.u32();
  m.cns = r.u8();
  m.nsid = r.u32();
}
void put(Writer& w, const IdentifyOk& m) { w.blob(m.data); }
void get(Reader& r, IdentifyOk& m) { m.data = r.blob(IDENTIFY_BYTES); }
void put(Writer& w, const AllocQueue& m) {
  w.u32(m.ctrl);
  w.u32(m.depth);
  w.u32(m.nsid);
  w.u32(m.flags);
  w.u64(m.sq_bus);
  w.u64(m.cq_bus);
}
void get(Reader& r, AllocQueue& m) {
  m.ctrl = r.u32();
  m.depth = r.u32();
  m.nsid = r.u32();
  m.flags = r.u32();
  m.sq_bus = r.u64();
  m.cq_bus = r.u64();
}
void put(Writer& w, const AllocQueueOk& m) {
  w.u16(m.qid);
  w.u32(m.depth);
  w.u32(m.flags);
  w.u64(m.map_offset);
  w.u64(m.map_length);
  w.u32(m.sq_doorbell);
  w.u32(m.cq_doorbell);
}
void get(Reader& r, AllocQueueOk& m) {
  m.qid = r.u16();
  m.depth = r.u32();
  m.flags = r.u32();
  m.map_offset = r.u64();
  m.map_length = r.u64();
  m.sq_doorbell = r.u32();
  m.cq_doorbell = r.u32();
}
void put(Writer& w, const ReleaseQueue& m) {
  w.u32(m.ctrl);
  w.u16(m.qid);
}
void get(Reader& r, ReleaseQueue& m) {
  m.ctrl = r.u32();
  m.qid = r.u16();
}
void put(Writer&, const ReleaseQueueOk&) {}
void get(Reader&, ReleaseQueueOk&) {}
void put(Writer& w, const RegisterDma& m) {
  w.u32(m.ctrl);
  w.u64(m.length);
}
void get(Reader& r, RegisterDma& m) {
  m.ctrl = r.u32();
  m.length = r.u64();
}
void put(Writer& w, const RegisterDmaOk& m) {
  w.u64(m.region);
  w.u32(m.page_shift);
  w.count(m.bus.size());
  for (uint64_t b : m.bus) w.u64(b);
}
void get(Reader& r, RegisterDmaOk& m) {
  m.region = r.u64();
  m.page_shift = r.u32();
  m.bus.resize(r.count(8, MAX_BUS_ENTRIES));
  for (auto& b : m.bus) b = r.u64();
}
void put(Writer& w, const UnregisterDma& m) {
  w.u32(m.ctrl);
  w.u64(m.region);
}
void get(Reader& r, UnregisterDma& m) {
  m.ctrl = r.u32();
  m.region = r.u64();
}
void put(Writer&, const UnregisterDmaOk&) {}
void get(Reader&, UnregisterDmaOk&) {}
void put(Writer& w, const ResolveExtents& m) {
  w.u32(m.flags);
  w.u64(m.first);
  w.u32(m.max);
}
void get(Reader& r, ResolveExtents& m) {
  m.flags = r.u32();
  m.first = r.u64();
  m.max = r.u32();
}
constexpr size_t EXTENT_BYTES = 8 * 3 + 4;
void put(Writer& w, const ResolveExtentsOk& m) {
  w.u32(m.ctrl);
  w.u32(m.nsid);
  w.u32(m.lba_size);
  w.u64(m.file_size);
  w.u64(m.device_offset);
  w.u64(m.total);
  w.str(m.path);
  w.count(m.extents.size());
  for (auto& e : m.extents) {
    w.u64(e.logical);
    w.u64(e.physical);
    w.u64(e.length);
    w.u32(e.flags);
  }
}
void get(Reader& r, ResolveExtentsOk& m) {
  m.ctrl = r.u32();
  m.nsid = r.u32();
  m.lba_size = r.u32();
  m.file_size = r.u64();
  m.device_offset = r.u64();
  m.total = r.u64();
  m.path = r.str();
  m.extents.resize(r.count(EXTENT_BYTES, MAX_MESSAGE / EXTENT_BYTES));
  for (auto& e : m.extents) {
    e.logical = r.u64();
    e.physical = r.u64();
    e.length = r.u64();
    e.flags = r.u32();
  }
}
void put(Writer& w, const Stats& m) { w.u32(m.flags); }
void get(Reader& r, Stats& m) { m.flags = r.u32(); }

constexpr size_t CLIENT_STAT_MIN = 8 + 12 + 2 + 2 + 8 + 32;
constexpr size_t QUEUE_STAT_MIN = 8 + 4 + 2 + 12 + 8;
constexpr size_t CTRL_STAT_MIN = 4 + 2 + 4 + 1 + 40;
void put(Writer& w, const StatsOk& m) {
  w.u64(m.instance);
  w.u64(m.uptime_ms);
  w.u32(m.queues_total);
  w.u32(m.max_queues_total);
  w.u64(m.clients_total);
  w.u64(m.reclaimed_queues);
  w.count(m.clients.size());
  for (auto& c : m.clients) {
    w.u64(c.id);
    w.u32(c.pid);
    w.u32(c.uid);
    w.u32(c.gid);
    w.str(c.name);
    w.str(c.rule);
    w.u32(c.queues);
    w.u32(c.regions);
    w.u64(c.dma_bytes);
    w.u64(c.requests);
    w.u64(c.errors);
    w.u64(c.connected_ms);
  }
  w.count(m.queues.size());
  for (auto& q : m.queues) {
    w.u64(q.client);
    w.u32(q.ctrl);
    w.u16(q.qid);
    w.u32(q.depth);
    w.u32(q.nsid);
    w.u32(q.flags);
    w.u64(q.age_ms);
  }
  w.count(m.controllers.size());
  for (auto& c : m.controllers) {
    w.u32(c.index);
    w.str(c.name);
    w.u16(c.queues_in_use);
    w.u16(c.queue_limit);
    w.u8(c.known);
    w.u64(c.admin_commands);
    w.u64(c.io_commands);
    w.u64(c.bytes_read);
    w.u64(c.bytes_written);
    w.u64(c.errors);
  }
}
void get(Reader& r, StatsOk& m) {
  m.instance = r.u64();
  m.uptime_ms = r.u64();
  m.queues_total = r.u32();
  m.max_queues_total = r.u32();
  m.clients_total = r.u64();
  m.reclaimed_queues = r.u64();
  m.clients.resize(r.count(CLIENT_STAT_MIN, 4096));
  for (auto& c : m.clients) {
    c.id = r.u64();
    c.pid = r.u32();
    c.uid = r.u32();
    c.gid = r.u32();
    c.name = r.str();
    c.rule = r.str();
    c.queues = r.u32();
    c.regions = r.u32();
    c.dma_bytes = r.u64();
    c.requests = r.u64();
    c.errors = r.u64();
    c.connected_ms = r.u64();
  }
  m.queues.resize(r.count(QUEUE_STAT_MIN, 65536));
  for (auto& q : m.queues) {
    q.client = r.u64();
    q.ctrl = r.u32();
    q.qid = r.u16();
    q.depth = r.u32();
    q.nsid = r.u32();
    q.flags = r.u32();
    q.age_ms = r.u64();
  }
  m.controllers.resize(r.count(CTRL_STAT_MIN, 256));
  for (auto& c : m.controllers) {
    c.index = r.u32();
    c.name = r.str();
    c.queues_in_use = r.u16();
    c.queue_limit = r.u16();
    c.known = r.u8();
    c.admin_commands = r.u64();
    c.io_commands = r.u64();
    c.bytes_read = r.u64();
    c.bytes_written = r.u64();
    c.errors = r.u64();
  }
}
void put(Writer& w, const ErrorReply& m) {
  w.i32(m.errc);
  w.str(m.text);
}
void get(Reader& r, ErrorReply& m) {
  m.errc = r.i32();
  m.text = r.str();
}

void write_header(std::vector<uint8_t>& out, const Header& h) {
  Writer w;
  w.u32(h.magic);
  w.u16(h.version);
  w.u16(h.type);
  w.u32(h.length);
  w.u32(h.seq);
  std::memcpy(out.data(), w.bytes().data(), HEADER_SIZE);
}

template <class T>
Body decode_as(Reader& r) {
  T m;
  get(r, m);
  r.end();
  return m;
}

}  // namespace

Type type_of(const Body& b) {
  return std::visit([](const auto& m) { return std::decay_t<decltype(m)>::type; }, b);
}

std::vector<uint8_t> encode(uint32_t seq, const Body& body) {
  Writer w;
  w.bytes().resize(HEADER_SIZE);
  std::visit([&](const auto& m) { put(w, m); }, body);
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
  h.magic = r.u32();
  h.version = r.u16();
  h.type = r.u16();
  h.length = r.u32();
  h.seq = r.u32();
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
  switch (t) {
    case Type::hello: m.body = decode_as<Hello>(r); break;
    case Type::hello_ok: m.body = decode_as<HelloOk>(r); break;
    case Type::list_controllers: m.body = decode_as<ListControllers>(r); break;
    case Type::list_controllers_ok: m.body = decode_as<ListControllersOk>(r); break;
    case Type::identify: m.body = decode_as<Identify>(r); break;
    case Type::identify_ok: m.body = decode_as<IdentifyOk>(r); break;
    case Type::alloc_queue: m.body = decode_as<AllocQueue>(r); break;
    case Type::alloc_queue_ok: m.body = decode_as<AllocQueueOk>(r); break;
    case Type::release_queue: m.body = decode_as<ReleaseQueue>(r); break;
    case Type::release_queue_ok: m.body = decode_as<ReleaseQueueOk>(r); break;
    case Type::register_dma: m.body = decode_as<RegisterDma>(r); break;
    case Type::register_dma_ok: m.body = decode_as<RegisterDmaOk>(r); break;
    case Type::unregister_dma: m.body = decode_as<UnregisterDma>(r); break;
    case Type::unregister_dma_ok: m.body = decode_as<UnregisterDmaOk>(r); break;
    case Type::resolve_extents: m.body = decode_as<ResolveExtents>(r); break;
    case Type::resolve_extents_ok: m.body = decode_as<ResolveExtentsOk>(r); break;
    case Type::stats: m.body = decode_as<Stats>(r); break;
    case Type::stats_ok: m.body = decode_as<StatsOk>(r); break;
    case Type::error: m.body = decode_as<ErrorReply>(r); break;
  }
  return m;
}

}  // namespace aisio::homi::wire
