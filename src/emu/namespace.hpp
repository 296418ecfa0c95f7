// One NVM namespace and its backing store (RAM, sparse file, or null).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "common/fd.hpp"
#include "emu/config.hpp"

namespace aisio::emu {

class Namespace {
 public:
  Namespace(uint32_t nsid, const NamespaceConfig& cfg);
  ~Namespace();
  Namespace(const Namespace&) = delete;
  Namespace& operator=(const Namespace&) = delete;

  uint32_t nsid() const { return nsid_; }
  uint32_t lba_size() const { return 1u << lba_shift_; }
  uint32_t lba_shift() const { return lba_shift_; }
  uint64_t nsze() const { return nsze_; }  // size in logical blocks
  Backing backing() const { return backing_; }
  // Byte address of LBA 0, or nullptr for the null backing (which stores nothing).
  uint8_t* data() const { return data_; }

  bool in_range(uint64_t slba, uint64_t nlb) const { return slba < nsze_ && nlb <= nsze_ - slba; }
  // Make the blocks read back as zeros, giving storage back where whole pages allow
  // (MADV_DONTNEED for RAM, a punched hole for a file). Range must be in_range().
  void deallocate(uint64_t slba, uint64_t nlb);
  // Make written data durable (msync for a file; nothing for RAM/null).
  void flush();

 private:
  uint32_t nsid_;
  uint32_t lba_shift_;
  uint64_t nsze_;
  Backing backing_;
  uint8_t* data_ = nullptr;
  size_t map_len_ = 0;
  Fd fd_;
  std::string path_;
};

}  // namespace aisio::emu
