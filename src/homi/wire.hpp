// The homid wire protocol: versioned, length-framed binary messages over a UNIX
// SOCK_SEQPACKET socket (one message per packet), descriptors riding along with
// SCM_RIGHTS. The schema is documented in src/homi/protocol.md; this header is its
// executable form.
//
// Every packet: a 16-byte Header (magic "HOMI", version, type, payload length, sequence
// number), then the payload: fields in declaration order, integers little-endian,
// strings as u16 length + bytes, arrays as u32 count + elements. decode() checks every
// length and count against the bytes actually present and rejects trailing bytes, so a
// message is either decoded completely or refused with Error(protocol); it never reads
// out of bounds nor allocates more than the packet could describe.
#pragma once
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>
#include <vector>

namespace aisio::homi::wire {

inline constexpr uint32_t MAGIC = 0x494D4F48;  // bytes 'H' 'O' 'M' 'I'
inline constexpr uint16_t VERSION = 1;         // the only version this build speaks
inline constexpr size_t HEADER_SIZE = 16;
inline constexpr size_t MAX_MESSAGE = 64 * 1024;  // header + payload
inline constexpr size_t MAX_STRING = 4096;
inline constexpr uint32_t MAX_BUS_ENTRIES = 8192;  // per registered region (16 GiB of 2 MiB pages)
inline constexpr uint32_t IDENTIFY_BYTES = 4096;

// Every message once: its wire name (the Type enumerator and type_name()), the struct
// that holds its fields, its type code and how many descriptors ride with it.
#define AISIO_HOMI_MESSAGES(X)                     \
  X(hello, Hello, 1, 0)                            \
  X(hello_ok, HelloOk, 2, 0)                       \
  X(list_controllers, ListControllers, 3, 0)       \
  X(list_controllers_ok, ListControllersOk, 4, 0)  \
  X(identify, Identify, 5, 0)                      \
  X(identify_ok, IdentifyOk, 6, 0)                 \
  X(alloc_queue, AllocQueue, 7, 0)                 \
  X(alloc_queue_ok, AllocQueueOk, 8, 1)            \
  X(release_queue, ReleaseQueue, 9, 0)             \
  X(release_queue_ok, ReleaseQueueOk, 10, 0)       \
  X(register_dma, RegisterDma, 11, 1)              \
  X(register_dma_ok, RegisterDmaOk, 12, 0)         \
  X(unregister_dma, UnregisterDma, 13, 0)          \
  X(unregister_dma_ok, UnregisterDmaOk, 14, 0)     \
  X(resolve_extents, ResolveExtents, 15, 1)        \
  X(resolve_extents_ok, ResolveExtentsOk, 16, 0)   \
  X(stats, Stats, 17, 0)                           \
  X(stats_ok, StatsOk, 18, 0)                      \
  /* SR-IOV virtual functions: 40.. to leave room */ \
  X(list_functions, ListFunctions, 40, 0)          \
  X(list_functions_ok, ListFunctionsOk, 41, 0)     \
  X(grant_function, GrantFunction, 42, 0)          \
  X(grant_function_ok, GrantFunctionOk, 43, 1)     \
  X(release_function, ReleaseFunction, 44, 0)      \
  X(release_function_ok, ReleaseFunctionOk, 45, 0) \
  X(error, ErrorReply, 255, 0)

enum class Type : uint16_t {
#define AISIO_HOMI_TYPE(name, T, code, fds) name = code,
  AISIO_HOMI_MESSAGES(AISIO_HOMI_TYPE)
#undef AISIO_HOMI_TYPE
};
const char* type_name(Type t);
// How many descriptors a message of this type carries (exactly).
unsigned fds_of(Type t);

struct Header {
  uint32_t magic = MAGIC;
  uint16_t version = VERSION;
  uint16_t type = 0;
  uint32_t length = 0;  // payload bytes after the header
  uint32_t seq = 0;     // chosen by the client; the reply carries the same
};

// ---- Messages ---------------------------------------------------------------------

// hello: the first request of a connection. The daemon answers with the version it
// will speak (VERSION when it lies in [min_version, max_version], else an error).
struct Hello {
  uint16_t min_version = VERSION, max_version = VERSION;
  uint32_t pid = 0;    // informational; the daemon trusts SO_PEERCRED only
  std::string client;  // a name for logs and `aisio homi clients`
};
struct HelloOk {
  uint16_t version = VERSION;
  uint64_t instance = 0;  // random per daemon start: a new value means a restarted daemon
  uint32_t uid = 0, gid = 0, pid = 0;  // the peer credentials the daemon saw
  uint64_t client_id = 0;
  uint32_t max_message = uint32_t(MAX_MESSAGE);
  uint32_t max_queues = 0;      // this client's queue budget
  uint64_t max_dma_bytes = 0;   // this client's registered-memory budget
  std::string daemon;           // "homid 0.1.0"
};

struct ListControllers {};
enum class Kind : uint8_t { soft = 1, pci_uio = 2, pci_vfio = 3 };
// How a client makes memory reachable by the controller (RegisterDma).
enum class DmaKind : uint8_t {
  memfd = 1,     // any memfd sealed F_SEAL_SHRINK; one bus range (software controller)
  hugepage = 2,  // a hugetlb memfd (MFD_HUGETLB, 2 MiB) sealed F_SEAL_SHRINK; one bus address per 2 MiB
  iova = 3,      // any memfd sealed F_SEAL_SHRINK, mapped through the IOMMU; one bus range
};
enum ControllerFlag : uint8_t {
  kCtrlDoorbellsIsolated = 1,  // each queue's doorbells on their own page(s), only those handed out
  kCtrlSgl = 2,                // the controller accepts SGLs for NVM I/O
  kCtrlFatal = 4,              // CSTS.CFS was set when the list was made
};
struct NamespaceInfo {
  uint32_t nsid = 0, lba_size = 0;
  uint64_t nsze = 0;        // blocks
  uint8_t has_backing = 0;  // a block device / image is configured: extents resolve to it
};
struct ControllerInfo {
  uint32_t index = 0;
  std::string name, address, model, serial;  // address: "emu:soft0" or "0000:01:00.0 BAR0 (uio)"
  uint8_t kind = 0, dma = 0, dstrd = 0, flags = 0;
  uint32_t page_size = 4096;     // CC.MPS
  uint32_t max_transfer = 0;     // bytes per command (MDTS), 0: unlimited
  uint32_t max_queue_depth = 0;  // CAP.MQES + 1
  uint16_t queue_limit = 0;      // I/O queue pairs the controller granted
  uint16_t queues_in_use = 0;
  std::vector<NamespaceInfo> namespaces;
};
struct ListControllersOk {
  std::vector<ControllerInfo> controllers;
};

// identify: the cached Identify data (CNS 0: namespace nsid, CNS 1: controller).
struct Identify {
  uint32_t ctrl = 0;
  uint8_t cns = 1;
  uint32_t nsid = 0;
};
struct IdentifyOk {
  std::vector<uint8_t> data;  // IDENTIFY_BYTES
};

enum AllocFlag : uint32_t {
  kAllocExternalMemory = 1,  // sq_bus/cq_bus are not in registered memory (GPU memory); policy must allow
  kAllocGpu = 2,             // the queue is driven for CUDA device `gpu` (u32 after cq_bus on the wire)
};
// alloc_queue: the daemon checks the budget and that [sq_bus, +depth*64) and
// [cq_bus, +depth*16) lie in memory this client registered on this controller, issues
// Create I/O CQ then Create I/O SQ, and answers with the queue id and the doorbell
// mapping (the descriptor comes with the reply).
struct AllocQueue {
  uint32_t ctrl = 0, depth = 0;
  uint32_t nsid = 0;  // the namespace the client means to use (0: any); policy may restrict
  uint32_t flags = 0;
  uint64_t sq_bus = 0, cq_bus = 0;
  uint32_t gpu = 0;  // with kAllocGpu: homid accounts the queue to this GPU
};
enum QueueGrantFlag : uint32_t {
  kGrantIsolated = 1,  // the mapping holds this queue's doorbells and nothing else
  kGrantGpu = 2,       // granted for GPU `gpu` (u32 after cq_doorbell on the wire)
};
// Map `map_length` bytes of the descriptor at `map_offset` (mmap, MAP_SHARED,
// read/write); the SQ tail doorbell is at byte sq_doorbell of that mapping, the CQ head
// doorbell at cq_doorbell.
struct AllocQueueOk {
  uint16_t qid = 0;
  uint32_t depth = 0, flags = 0;
  uint64_t map_offset = 0, map_length = 0;
  uint32_t sq_doorbell = 0, cq_doorbell = 0;
  uint32_t gpu = 0;  // with kGrantGpu
};
struct ReleaseQueue {
  uint32_t ctrl = 0;
  uint16_t qid = 0;
};
struct ReleaseQueueOk {};

// register_dma: a memfd (with the request) of `length` bytes becomes reachable by the
// controller; bus[i] is the bus address of bytes [i << page_shift, (i + 1) << page_shift).
struct RegisterDma {
  uint32_t ctrl = 0;
  uint64_t length = 0;
};
struct RegisterDmaOk {
  uint64_t region = 0;      // handle for unregister_dma
  uint32_t page_shift = 63; // 63: one contiguous range
  std::vector<uint64_t> bus;
};
struct UnregisterDma {
  uint32_t ctrl = 0;
  uint64_t region = 0;
};
struct UnregisterDmaOk {};

enum ResolveFlag : uint32_t {
  kResolveSync = 1,  // FIEMAP_FLAG_SYNC: write back dirty data first
};
// resolve_extents: the descriptor of an open file comes with the request (holding it
// is the authorisation). Extents [first, first + max) of the file are returned with
// `physical` as a byte offset in the namespace (partition / loop offsets applied).
struct ResolveExtents {
  uint32_t flags = kResolveSync;
  uint64_t first = 0;
  uint32_t max = 0;  // 0: as many as fit in one reply
};
struct ExtentRecord {
  uint64_t logical = 0, physical = 0, length = 0;
  uint32_t flags = 0;  // extents::ExtentFlag bits
};
struct ResolveExtentsOk {
  uint32_t ctrl = 0, nsid = 0, lba_size = 0;
  uint64_t file_size = 0, device_offset = 0, total = 0;
  std::string path;  // as the daemon sees the file
  std::vector<ExtentRecord> extents;
};

enum StatsFlag : uint32_t {
  kStatsAll = 1,  // every client (policy `admin`), else only the caller
};
struct ClientStat {
  uint64_t id = 0;
  uint32_t pid = 0, uid = 0, gid = 0;
  std::string name, rule;
  uint32_t queues = 0, regions = 0;
  uint64_t dma_bytes = 0, requests = 0, errors = 0, connected_ms = 0;
};
struct QueueStat {
  uint64_t client = 0;
  uint32_t ctrl = 0;
  uint16_t qid = 0;
  uint32_t depth = 0, nsid = 0, flags = 0;  // flags: the AllocFlag bits it was granted with
  uint64_t age_ms = 0;
  uint32_t gpu = 0;  // with kAllocGpu in flags (u32 after age_ms on the wire)
};
struct ControllerStat {
  uint32_t index = 0;
  std::string name;
  uint16_t queues_in_use = 0, queue_limit = 0;
  uint8_t known = 0;  // 1: command counters below are real (software controller)
  uint64_t admin_commands = 0, io_commands = 0, bytes_read = 0, bytes_written = 0, errors = 0;
};
// A namespace homid exports to the kernel through ublk (homi/ublk/).
struct UblkStat {
  uint32_t ctrl = 0, dev_id = 0, nsid = 0;
  std::string path;   // /dev/ublkb<id>
  std::string qids;   // NVMe I/O queue ids serving it, "3,4"
  uint16_t queues = 0, depth = 0;
  uint32_t max_io_bytes = 0;
  uint8_t recovered = 0;  // taken over from a homid that died (USER_RECOVERY)
  uint64_t reads = 0, writes = 0, flushes = 0, discards = 0, write_zeroes = 0, errors = 0;
  uint64_t bytes_read = 0, bytes_written = 0;
};
struct Stats {
  uint32_t flags = kStatsAll;
};
struct StatsOk {
  uint64_t instance = 0, uptime_ms = 0;
  uint32_t queues_total = 0, max_queues_total = 0;
  uint64_t clients_total = 0;  // connections accepted since start
  uint64_t reclaimed_queues = 0;  // queues deleted for clients that went away
  std::vector<ClientStat> clients;
  std::vector<QueueStat> queues;
  std::vector<ControllerStat> controllers;
  std::vector<UblkStat> ublk;
};

// SR-IOV virtual functions of the sriov-pf controllers (the PF stays with the kernel).
struct FunctionInfo {
  std::string pf;        // the sriov-pf controller's name
  std::string pf_address, address;  // BDFs of the PF and of this VF
  uint16_t vfn = 0, scid = 0;       // virtual function number, secondary controller id
  uint8_t online = 0;
  uint8_t driver = 0;               // Kind: 2 uio, 3 vfio
  uint16_t vq = 0, vi = 0;          // flexible resources assigned
  uint64_t holder = 0;              // client id, 0 = free
  uint64_t grants = 0;
};
struct ListFunctions {};
struct ListFunctionsOk {
  std::vector<FunctionInfo> functions;
};
// grant_function: a free VF of `pf` ("" = any sriov-pf the rule allows), vfn 0 = any.
// The reply carries the VF's BAR0 descriptor (uio: sysfs resource0; vfio: the device
// fd, BAR0 at bar_offset): the holder runs the whole driver on it.
struct GrantFunction {
  std::string pf;
  uint16_t vfn = 0;
};
struct GrantFunctionOk {
  FunctionInfo function;
  uint64_t bar_offset = 0, bar_size = 0;
};
// release_function: the VF is reset (FLR, secondary controller offline/online) and freed.
struct ReleaseFunction {
  std::string pf;
  uint16_t vfn = 0;
};
struct ReleaseFunctionOk {};

struct ErrorReply {
  int32_t errc = 0;  // aisio::Errc
  std::string text;
};

// The messages in table order (the leading void swallows the list's first comma).
template <class, class... M>
using MessageVariant = std::variant<M...>;
#define AISIO_HOMI_STRUCT(name, T, code, fds) , T
using Body = MessageVariant<void AISIO_HOMI_MESSAGES(AISIO_HOMI_STRUCT)>;
#undef AISIO_HOMI_STRUCT

Type type_of(const Body& b);

struct Message {
  Header header;
  Body body;
};

// Header + payload of one message. Throws Error(protocol) if it would exceed MAX_MESSAGE.
std::vector<uint8_t> encode(uint32_t seq, const Body& body);
// One packet -> message. `fds` is the number of descriptors that came with it; it must
// match fds_of(type). Throws Error(protocol) naming what is wrong.
Message decode(std::span<const uint8_t> packet, unsigned fds = 0);
// Only the header (for error replies to undecodable messages); false if too short.
bool peek_header(std::span<const uint8_t> packet, Header& out);

// ---- Primitive codec (exposed for tests and the fuzz target) ----------------------
// Writer and Reader offer the same field calls (Writer takes the values, Reader assigns
// them), so wire.cpp lists each message's fields once for both directions. A field is
// encoded by its type: integers little-endian in their own width, strings as u16
// length + bytes.

class Writer {
 public:
  template <class... F>
  void operator()(const F&... fields) {
    (put(fields), ...);
  }
  void blob(std::span<const uint8_t> b, size_t /*max*/ = 0);  // count, then the bytes; the limit is the reader's
  void count(size_t n);  // u32
  // count, then each(element). min_elem and max are the reader's checks.
  template <class T, class F>
  void array(const std::vector<T>& v, size_t /*min_elem*/, size_t /*max*/, F&& each) {
    count(v.size());
    for (const T& e : v) each(e);
  }
  std::vector<uint8_t>& bytes() { return buf_; }

 private:
  template <std::integral T>
  void put(T v) {
    auto u = std::make_unsigned_t<T>(v);
    for (size_t i = 0; i < sizeof u; ++i) buf_.push_back(uint8_t(u >> (8 * i)));
  }
  void put(std::string_view s);  // throws beyond MAX_STRING
  std::vector<uint8_t> buf_;
};

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> b) : p_(b) {}
  template <class... F>
  void operator()(F&... fields) {
    (get(fields), ...);
  }
  void blob(std::vector<uint8_t>& v, size_t max);
  // An element count; refuses counts whose elements (each at least min_elem bytes)
  // cannot fit in what is left, or above max.
  uint32_t count(size_t min_elem, size_t max);
  // count(min_elem, max) elements, each filled by each(element).
  template <class T, class F>
  void array(std::vector<T>& v, size_t min_elem, size_t max, F&& each) {
    v.resize(count(min_elem, max));
    for (T& e : v) each(e);
  }
  size_t left() const { return p_.size() - pos_; }
  void end() const;  // throws unless every byte was consumed

 private:
  template <std::integral T>
  void get(T& v) {
    const uint8_t* p = take(sizeof v);
    uint64_t u = 0;
    for (size_t i = 0; i < sizeof v; ++i) u |= uint64_t(p[i]) << (8 * i);
    v = T(u);
  }
  void get(std::string& s);
  const uint8_t* take(size_t n);
  std::span<const uint8_t> p_;
  size_t pos_ = 0;
};

}  // namespace aisio::homi::wire
