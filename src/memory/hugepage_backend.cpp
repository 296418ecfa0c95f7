#include "memory/hugepage_backend.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/error.hpp"

namespace aisio {

HugepageBackend::Meminfo HugepageBackend::meminfo(const std::string& path) {
  Meminfo m;
  std::ifstream in(path);
  std::string key;
  size_t val;
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    if (!(ls >> key >> val)) continue;
    if (key == "HugePages_Total:") m.total = val;
    else if (key == "HugePages_Free:") m.free = val;
    else if (key == "HugePages_Rsvd:") m.reserved = val;
    else if (key == "HugePages_Surp:") m.surplus = val;
    else if (key == "Hugepagesize:") m.page_kb = val;
  }
  return m;
}

std::string HugepageBackend::shortage_message(size_t pages, const std::string& dir) {
  Meminfo m = meminfo();
  // Free pages that are not already promised to another mapping.
  size_t available = m.free > m.reserved ? m.free - m.reserved : 0;
  size_t missing = pages > available ? pages - available : 0;
  if (missing == 0) missing = pages;  // counters raced or a per-node shortage: ask for the lot
  size_t want = m.total + missing;
  std::string s = "cannot allocate " + std::to_string(pages) + " hugepage(s) of 2 MiB (" +
                  std::to_string(pages * 2) + " MiB) for DMA memory: /proc/meminfo shows HugePages_Total " +
                  std::to_string(m.total) + ", HugePages_Free " + std::to_string(m.free) + ", HugePages_Rsvd " +
                  std::to_string(m.reserved) + ". Reserve " + std::to_string(missing) +
                  " more 2 MiB page(s), as root: 'echo " + std::to_string(want) +
                  " > /proc/sys/vm/nr_hugepages' (or 'sysctl -w vm.nr_hugepages=" + std::to_string(want) +
                  "'; put vm.nr_hugepages=" + std::to_string(want) + " in /etc/sysctl.d/ to keep it)";
  if (m.page_kb && m.page_kb != 2048)
    s += "; note the default hugepage size here is " + std::to_string(m.page_kb) +
         " kB: reserve 2 MiB pages in /sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages";
  if (!dir.empty())
    s += "; and mount hugetlbfs at " + dir + ": 'mount -t hugetlbfs -o pagesize=2M nodev " + dir + "'";
  return s;
}

std::vector<uint64_t> HugepageBackend::physical_addresses(const void* va, size_t len, size_t page_size,
                                                          const std::string& pagemap) {
  int fd = ::open(pagemap.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno("open " + pagemap);
  const uint64_t sys_page = uint64_t(sysconf(_SC_PAGESIZE));
  std::vector<uint64_t> out;
  uintptr_t a = uintptr_t(va);
  for (size_t off = 0; off < len; off += page_size) {
    uint64_t entry = 0;
    off_t pos = off_t((a + off) / sys_page * 8);
    ssize_t n = pread(fd, &entry, sizeof entry, pos);
    if (n != ssize_t(sizeof entry)) {
      int e = n < 0 ? errno : EIO;
      ::close(fd);
      throw_errno("read " + pagemap, e);
    }
    bool present = entry >> 63;
    uint64_t pfn = entry & ((uint64_t(1) << 55) - 1);
    if (!present) {
      ::close(fd);
      throw Error(Errc::no_memory, "DMA page at " + std::to_string(a + off) + " is not present in " + pagemap);
    }
    if (pfn == 0) {
      ::close(fd);
      throw Error(Errc::system,
                  pagemap + " shows physical frame 0 for DMA memory: the kernel hides physical addresses from "
                            "processes without CAP_SYS_ADMIN. Run as root (or grant CAP_SYS_ADMIN), or bind the "
                            "device to vfio-pci ('aisio bind --driver vfio BDF') so the IOMMU translates and no "
                            "physical addresses are needed");
    }
    out.push_back(pfn * sys_page + ((a + off) % sys_page));
  }
  ::close(fd);
  return out;
}

DmaChunk HugepageBackend::grow(size_t min_bytes) {
  size_t pages = (min_bytes + PAGE_SIZE - 1) / PAGE_SIZE;
  if (pages == 0) pages = 1;
  size_t len = pages * PAGE_SIZE;

  int fd = -1;
  if (!opt_.hugetlbfs_dir.empty()) {
    std::string tmpl = opt_.hugetlbfs_dir + "/aisio-dma.XXXXXX";
    fd = mkstemp(tmpl.data());
    if (fd < 0) {
      int e = errno;
      throw Error(Errc::system, "create a file in " + opt_.hugetlbfs_dir + ": " + std::strerror(e) +
                                    " (is hugetlbfs mounted there? 'mount -t hugetlbfs -o pagesize=2M nodev " +
                                    opt_.hugetlbfs_dir + "', as root)");
    }
    unlink(tmpl.c_str());
    if (ftruncate(fd, off_t(len)) != 0) {
      int e = errno;
      ::close(fd);
      if (e == ENOMEM || e == ENOSPC || e == EINVAL)
        throw Error(Errc::no_memory, shortage_message(pages, opt_.hugetlbfs_dir));
      throw_errno("ftruncate a hugetlbfs file", e);
    }
  }
  int base_flags = MAP_POPULATE | (fd < 0 ? (MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB) : MAP_SHARED);
  void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, base_flags | (opt_.lock ? MAP_LOCKED : 0), fd, 0);
  if (p == MAP_FAILED && opt_.lock && (errno == EAGAIN || errno == EPERM))
    p = mmap(nullptr, len, PROT_READ | PROT_WRITE, base_flags, fd, 0);  // RLIMIT_MEMLOCK: hugepages never swap
  int e = errno;
  if (fd >= 0) ::close(fd);
  if (p == MAP_FAILED) {
    if (e == ENOMEM || e == EINVAL || e == ENOSPC) throw Error(Errc::no_memory, shortage_message(pages, opt_.hugetlbfs_dir));
    throw_errno("mmap " + std::to_string(len) + " bytes of hugepages", e);
  }
  auto unmap = [len](void* q) { munmap(q, len); };
  std::shared_ptr<void> keep(p, unmap);
  // A hugetlbfs file may come back partly unpopulated if the pool ran dry mid-way;
  // reading pagemap then shows a missing page, reported as a shortage.
  std::vector<uint64_t> bus;
  try {
    bus = physical_addresses(p, len, PAGE_SIZE, opt_.pagemap);
  } catch (const Error& err) {
    if (err.code() == Errc::no_memory) throw Error(Errc::no_memory, shortage_message(pages, opt_.hugetlbfs_dir));
    throw;
  }
  for (uint64_t b : bus)
    if (b & (PAGE_SIZE - 1))
      throw Error(Errc::system, "hugepage at physical " + std::to_string(b) +
                                    " is not 2 MiB aligned: the mapping did not get 2 MiB pages (default "
                                    "hugepage size not 2 MiB?)");
  DmaChunk c;
  c.va = static_cast<uint8_t*>(p);
  c.len = len;
  c.page_shift = PAGE_SHIFT;
  c.bus = std::move(bus);
  c.keepalive = std::move(keep);
  return c;
}

}  // namespace aisio
