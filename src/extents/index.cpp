#include "extents/index.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include <algorithm>
#include <cstring>

#include "common/error.hpp"

namespace aisio::extents {
namespace {
[[noreturn]] void bad(const std::string& m) { throw Error(Errc::protocol, "extent index: " + m); }
uint64_t align8(uint64_t v) { return (v + 7) & ~uint64_t(7); }
bool mul_ok(uint64_t a, uint64_t b, uint64_t& out) { return !__builtin_mul_overflow(a, b, &out); }

uint64_t header_sum(const IndexHeader& h) {
  IndexHeader c = h;
  c.header_checksum = 0;
  return XXH64(&c, sizeof c, 0);
}
}  // namespace

void IndexBuilder::add(const FileExtents& fx) {
  if (!paths_.insert(fx.path).second) throw Error(Errc::invalid_argument, "extent index: duplicate path " + fx.path);
  files_.push_back(fx);
}

std::vector<uint8_t> IndexBuilder::build() const {
  std::vector<const FileExtents*> order;
  for (auto& f : files_) order.push_back(&f);
  std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->path < b->path; });
  uint64_t next = 0, strings = 0;
  for (auto* f : order) {
    next += f->extents.size();
    strings += f->path.size();
  }
  IndexHeader h{};
  std::memcpy(h.magic, kIndexMagic, 8);
  h.version = kIndexVersion;
  h.header_size = sizeof(IndexHeader);
  h.file_record_size = sizeof(IndexFileRecord);
  h.extent_record_size = sizeof(IndexExtentRecord);
  h.file_count = order.size();
  h.extent_count = next;
  h.files_offset = sizeof(IndexHeader);
  h.extents_offset = h.files_offset + h.file_count * sizeof(IndexFileRecord);
  h.strings_offset = h.extents_offset + h.extent_count * sizeof(IndexExtentRecord);
  h.strings_size = strings;
  h.total_size = align8(h.strings_offset + strings);
  h.generation = generation_;
  h.device_offset = device_offset_;
  h.lba_size = lba_size_;

  std::vector<uint8_t> out(h.total_size, 0);
  uint64_t ei = 0, so = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    const auto& f = *order[i];
    IndexFileRecord r{};
    r.dev = f.dev;
    r.ino = f.ino;
    r.size = f.size;
    r.mtime_ns = f.mtime_ns;
    r.ctime_ns = f.ctime_ns;
    r.first_extent = ei;
    r.extent_count = f.extents.size();
    r.path_offset = so;
    r.path_len = uint32_t(f.path.size());
    r.block_size = f.block_size;
    std::memcpy(out.data() + h.files_offset + i * sizeof r, &r, sizeof r);
    for (const auto& e : f.extents) {
      IndexExtentRecord x{e.logical, e.physical, e.length, e.flags, 0};
      std::memcpy(out.data() + h.extents_offset + ei * sizeof x, &x, sizeof x);
      ++ei;
    }
    std::memcpy(out.data() + h.strings_offset + so, f.path.data(), f.path.size());
    so += f.path.size();
  }
  h.body_checksum = XXH64(out.data() + sizeof h, out.size() - sizeof h, 0);
  h.header_checksum = header_sum(h);
  std::memcpy(out.data(), &h, sizeof h);
  return out;
}

IndexView::IndexView(std::span<const uint8_t> b) {
  if (b.size() < sizeof(IndexHeader)) bad("too small for a header");
  if (reinterpret_cast<uintptr_t>(b.data()) % 8) bad("buffer not 8-byte aligned");
  hdr_ = reinterpret_cast<const IndexHeader*>(b.data());
  const IndexHeader& h = *hdr_;
  if (std::memcmp(h.magic, kIndexMagic, 8) != 0) bad("bad magic");
  if (h.version != kIndexVersion) bad("unsupported version " + std::to_string(h.version));
  if (h.header_size != sizeof(IndexHeader) || h.file_record_size != sizeof(IndexFileRecord) ||
      h.extent_record_size != sizeof(IndexExtentRecord))
    bad("record sizes do not match this build");
  if (header_sum(h) != h.header_checksum) bad("header checksum mismatch");
  if (h.total_size > b.size()) bad("truncated: header says " + std::to_string(h.total_size) + " bytes");
  uint64_t fbytes, ebytes;
  if (!mul_ok(h.file_count, sizeof(IndexFileRecord), fbytes) || !mul_ok(h.extent_count, sizeof(IndexExtentRecord), ebytes))
    bad("record counts overflow");
  if (h.files_offset != sizeof(IndexHeader) || h.extents_offset != h.files_offset + fbytes ||
      h.strings_offset != h.extents_offset + ebytes || h.strings_offset > h.total_size ||
      h.strings_size > h.total_size - h.strings_offset)
    bad("section offsets inconsistent");
  if (XXH64(b.data() + sizeof(IndexHeader), h.total_size - sizeof(IndexHeader), 0) != h.body_checksum)
    bad("body checksum mismatch");
  files_ = {reinterpret_cast<const IndexFileRecord*>(b.data() + h.files_offset), size_t(h.file_count)};
  extents_ = {reinterpret_cast<const IndexExtentRecord*>(b.data() + h.extents_offset), size_t(h.extent_count)};
  strings_ = {reinterpret_cast<const char*>(b.data() + h.strings_offset), size_t(h.strings_size)};
  std::string_view prev;
  for (size_t i = 0; i < files_.size(); ++i) {
    const auto& r = files_[i];
    if (r.first_extent > extents_.size() || r.extent_count > extents_.size() - r.first_extent)
      bad("file record " + std::to_string(i) + " has extents out of range");
    if (r.path_offset > strings_.size() || r.path_len > strings_.size() - r.path_offset)
      bad("file record " + std::to_string(i) + " has its path out of range");
    std::string_view p = strings_.substr(r.path_offset, r.path_len);
    if (i && !(prev < p)) bad("file records not sorted by path");
    prev = p;
  }
}

std::vector<Extent> IndexView::File::to_extents() const {
  std::vector<Extent> out;
  out.reserve(extents.size());
  for (auto& e : extents) out.push_back({e.logical, e.physical, e.length, e.flags});
  return out;
}

IndexView::File IndexView::file(size_t i) const {
  if (i >= files_.size()) throw Error(Errc::invalid_argument, "extent index: file index out of range");
  const auto& r = files_[i];
  return {strings_.substr(r.path_offset, r.path_len), &r, extents_.subspan(r.first_extent, r.extent_count)};
}

std::optional<IndexView::File> IndexView::find(std::string_view path) const {
  size_t lo = 0, hi = files_.size();
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    auto p = strings_.substr(files_[mid].path_offset, files_[mid].path_len);
    if (p < path) lo = mid + 1;
    else hi = mid;
  }
  if (lo < files_.size() && strings_.substr(files_[lo].path_offset, files_[lo].path_len) == path) return file(lo);
  return std::nullopt;
}

std::optional<IndexView::File> IndexView::find(uint64_t dev, uint64_t ino) const {
  for (size_t i = 0; i < files_.size(); ++i)
    if (files_[i].dev == dev && files_[i].ino == ino) return file(i);
  return std::nullopt;
}

IndexMemfd IndexMemfd::publish(std::span<const uint8_t> bytes, const std::string& name) {
  int fd = ::memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) throw_errno("memfd_create");
  IndexMemfd m(fd);
  if (::ftruncate(fd, off_t(bytes.size())) != 0) throw_errno("ftruncate memfd");
  size_t done = 0;
  while (done < bytes.size()) {
    ssize_t n = ::pwrite(fd, bytes.data() + done, bytes.size() - done, off_t(done));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_errno("write memfd");
    }
    done += size_t(n);
  }
  if (::fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0)
    throw_errno("seal memfd");
  return m;
}

IndexMemfd& IndexMemfd::operator=(IndexMemfd&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

IndexMemfd::~IndexMemfd() {
  if (fd_ >= 0) ::close(fd_);
}

MappedIndex::MappedIndex(void* addr, size_t len)
    : addr_(addr), len_(len), view_(std::span<const uint8_t>(static_cast<const uint8_t*>(addr), len)) {}

MappedIndex::MappedIndex(MappedIndex&& o) noexcept : addr_(o.addr_), len_(o.len_), view_(o.view_) {
  o.addr_ = nullptr;
  o.len_ = 0;
}

MappedIndex::~MappedIndex() {
  if (addr_) ::munmap(addr_, len_);
}

MappedIndex MappedIndex::map(int fd, bool require_sealed) {
  if (require_sealed) {
    int seals = ::fcntl(fd, F_GET_SEALS);
    if (seals < 0) throw Error(Errc::invalid_argument, "extent index: fd is not a sealable memfd");
    int need = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW;
    if ((seals & need) != need) throw Error(Errc::invalid_argument, "extent index: memfd is not sealed against writes");
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) throw_errno("stat index fd");
  if (st.st_size < off_t(sizeof(IndexHeader))) throw Error(Errc::protocol, "extent index: too small");
  size_t len = size_t(st.st_size);
  void* p = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) throw_errno("mmap index");
  try {
    return MappedIndex(p, len);
  } catch (...) {
    ::munmap(p, len);
    throw;
  }
}

}  // namespace aisio::extents
