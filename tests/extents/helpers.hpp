// Test helpers for the extents layer: temp dirs, shell commands, XFS images made
// with mkfs.xfs (fil::mkfs_xfs), loop mounts that always clean up, parsers for xfs_bmap / xfs_db.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/error.hpp"
#include "common/expect_error.hpp"
#include "extents/extent.hpp"
#include "fil/image.hpp"  // fil::mkfs_xfs: mkfs.xfs allowing small images

namespace aisio::test {

struct CmdResult {
  int status = -1;  // exit status (-1: did not run / signal)
  std::string out;  // stdout + stderr
};
CmdResult sh(const std::string& cmd);
std::string quote(const std::string& s);
bool have_tool(const std::string& name);
bool is_root();

class TempDir {
 public:
  // Under `base` ("" : $TMPDIR or /tmp).
  explicit TempDir(const std::string& base = "");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// A loop device over `image` (at `offset`), optionally with `fs` mounted on `dir`.
// The destructor unmounts and detaches, whatever happened in between.
class LoopDevice {
 public:
  // nullptr and *why filled when the loop device cannot be set up.
  static std::unique_ptr<LoopDevice> attach(const std::string& image, uint64_t offset, uint64_t size,
                                            std::string* why);
  ~LoopDevice();
  const std::string& dev() const { return dev_; }
  bool mount(const std::string& dir, std::string* why);  // -o noatime
  void umount();
  bool mounted() const { return !dir_.empty(); }

 private:
  std::string dev_, dir_;
};

// A deterministic pseudo-random byte pattern (seeded splitmix64).
void fill_random(uint8_t* p, size_t n, uint64_t seed);
uint64_t xxh64_file(const std::string& path, uint64_t* size = nullptr);
uint64_t xxh64_bytes(const void* p, size_t n);
std::vector<uint8_t> read_bytes(const std::string& path);
void write_bytes(const std::string& path, const std::vector<uint8_t>& b);

// `xfs_bmap -vp` of each file (one xfs_io process for all of them, driven through
// stdin: open / bmap -vp / close), as extents in bytes: holes dropped, unwritten from
// the prealloc flag, shared from the shared flag.
std::map<std::string, std::vector<extents::Extent>> xfs_bmap_all(const std::vector<std::string>& files);
// `xfs_db -r -c 'inode N' -c bmap IMAGE` records: {file_block, start_block, count, unwritten}.
struct DbRec {
  uint64_t file_block, start_block, count;
  bool unwritten;
};
std::vector<DbRec> xfs_db_bmap(const std::string& image, uint64_t ino);

// Builds a file system image without mounting: `mkfs.xfs -p protofile`.
class ProtoImage {
 public:
  struct Node {
    char type;         // '-' file, 'd' dir, 'l' symlink, 'p' fifo, 'c' char device
    int mode;
    std::string arg;   // file: staged source path; symlink: target; chardev: "maj min"
    std::vector<uint8_t> data;  // files
  };
  explicit ProtoImage(std::string staging) : staging_(std::move(staging)) {}
  void file(const std::string& path, std::vector<uint8_t> data, int mode = 0644);
  void dir(const std::string& path, int mode = 0755);
  void symlink(const std::string& path, const std::string& target);
  void fifo(const std::string& path);
  void chardev(const std::string& path, int maj, int min);
  std::string protofile() const;
  // mkfs.xfs -p on a fresh image of `size` bytes (plus mkfs options); "" on success,
  // else the error.
  std::string make(const std::string& image, uint64_t size, const std::string& mkfs_opts = "");
  const std::vector<std::pair<std::string, Node>>& entries() const { return nodes_; }

 private:
  void emit(const std::string& dir, int depth, std::string& out) const;
  std::string staging_;
  std::vector<std::pair<std::string, Node>> nodes_;  // insertion order; parents first
  int staged_ = 0;
};

// Compare two extent lists field by field, printing both on mismatch.
std::string dump(const std::vector<extents::Extent>& v);

}  // namespace aisio::test
