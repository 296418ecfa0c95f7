// XFS (v5) on-disk decoder: reads an unmounted file system through a BlockReader
// (image file, block device, later the NVMe driver) and answers what the kernel
// would: directory listings, path lookups, symlink targets and file extents.
//
// Every metadata block it uses is verified (magic, CRC32c, owner, self-address,
// UUID, level and bounds); anything inconsistent throws aisio::Error(protocol)
// naming the structure. Unsupported incompatible features are refused by name.
// The decoder reads what is on disk: run it on an unmounted (or frozen) file system;
// a dirty log is not replayed.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "extents/block_reader.hpp"
#include "extents/extent.hpp"

namespace aisio::extents::xfs {

// In the order of the XFS directory entry file types (ftype 1..7).
enum class FileType : uint8_t { unknown = 0, regular, directory, chardev, blockdev, fifo, socket, symlink };
const char* file_type_name(FileType t);
FileType file_type_from_mode(uint16_t mode);

struct Superblock {
  uint32_t block_size = 0;
  uint8_t block_log = 0;
  uint64_t data_blocks = 0;
  uint64_t rt_blocks = 0;
  uint32_t ag_blocks = 0;
  uint32_t ag_count = 0;
  uint8_t ag_blk_log = 0;
  uint16_t sector_size = 0;
  uint16_t inode_size = 0;
  uint16_t inodes_per_block = 0;
  uint8_t inode_log = 0;
  uint8_t inopb_log = 0;
  uint8_t dir_blk_log = 0;
  uint32_t dir_block_size = 0;
  uint64_t root_ino = 0;
  uint64_t log_start = 0;
  uint32_t log_blocks = 0;
  uint16_t version = 0;  // sb_versionnum
  uint32_t features_compat = 0, features_ro_compat = 0, features_incompat = 0, features_log_incompat = 0;
  uint8_t uuid[16] = {};
  uint8_t meta_uuid[16] = {};  // the UUID stamped into metadata blocks
  std::string label;
  uint64_t icount = 0, ifree = 0, fdblocks = 0;

  bool has_ftype() const;
  bool has_sparse_inodes() const;
  bool has_reflink() const;
  bool has_finobt() const;
  bool has_rmapbt() const;
  bool has_bigtime() const;
  bool has_nrext64() const;
  std::vector<std::string> feature_names() const;
  std::string uuid_string() const;
};

// Parses and verifies a superblock sector (sector_size bytes). Throws
// Errc::protocol for corruption, Errc::not_supported for v4 or unknown features.
Superblock parse_superblock(std::span<const uint8_t> sector, bool verify_crc = true);

struct Options {
  // Verify CRC32c of every metadata block (on by default). Off only for fuzzing and
  // forensics: the structural checks (magic, owner, address, bounds, levels) stay.
  bool verify_crc = true;
};

struct Inode {
  uint64_t ino = 0;
  uint16_t mode = 0;
  uint8_t version = 0;
  uint8_t format = 0;   // data fork format (kFmt*)
  uint8_t aformat = 0;  // attr fork format
  uint32_t nlink = 0;
  uint32_t uid = 0, gid = 0;
  uint64_t size = 0;
  uint64_t nblocks = 0;   // blocks incl. bmbt blocks
  uint64_t nextents = 0;  // data fork extents
  uint32_t anextents = 0;
  uint8_t forkoff = 0;
  uint16_t flags = 0;
  uint64_t flags2 = 0;
  uint32_t gen = 0;
  uint32_t rdev = 0;  // device files: the raw 32-bit device number from the fork
  int64_t atime_ns = 0, mtime_ns = 0, ctime_ns = 0, crtime_ns = 0;
  std::vector<uint8_t> data_fork;  // raw data fork bytes (literal area up to the attr fork)

  FileType type() const { return file_type_from_mode(mode); }
  bool is_dir() const { return type() == FileType::directory; }
  bool is_reg() const { return type() == FileType::regular; }
  bool is_symlink() const { return type() == FileType::symlink; }
  bool reflink() const;
};

// One data fork mapping record (bmbt_rec), in file system blocks.
struct BmapRecord {
  uint64_t file_block = 0;   // startoff
  uint64_t start_block = 0;  // fsblock: (agno << agblklog) | agbno
  uint64_t block_count = 0;
  bool unwritten = false;
  friend bool operator==(const BmapRecord&, const BmapRecord&) = default;
};

struct DirEntry {
  std::string name;
  uint64_t ino = 0;
  FileType type = FileType::unknown;  // from the dirent's ftype
  friend bool operator==(const DirEntry&, const DirEntry&) = default;
};

enum class DirFormat { shortform, block, leaf, node };
const char* dir_format_name(DirFormat f);

struct DirInfo {
  DirFormat format = DirFormat::shortform;
  uint8_t fork_format = 0;  // kFmtLocal, kFmtExtents or kFmtBtree ("btree" directories)
  uint64_t data_blocks = 0;  // directory blocks below 32 GiB
  uint64_t leaf_blocks = 0;  // blocks at 32 GiB and up (leaf/node)
  uint64_t free_blocks = 0;  // blocks at 64 GiB and up (free index)
  int node_levels = 0;       // da-btree levels above the leaves (node format)
};

struct ResolveOptions {
  bool follow_final = true;  // follow a symlink in the last component
  int max_symlinks = 40;     // ELOOP after this many
};

struct WalkEntry {
  std::string path;  // relative to the walk's start, "a/b/c"
  DirEntry entry;
  int depth = 0;     // 0 for entries of the start directory
};

struct Location {
  uint32_t agno = 0;
  uint32_t agbno = 0;
  uint32_t index = 0;  // inode within its block
  uint64_t byte = 0;   // byte offset on the device
};

// Not thread-safe: one thread at a time (callers share it under a mutex). Parsed
// inodes, data fork maps and extent lists are cached (the device is assumed not to
// change while unmounted); refresh() or extents(ino, true) re-read.
class Filesystem {
 public:
  // Reads and verifies the primary superblock. The reader must cover the file system
  // (a partition window when the image holds a partition table).
  explicit Filesystem(std::shared_ptr<BlockReader> dev, Options opt = {});
  static std::unique_ptr<Filesystem> open(const std::string& path, uint64_t offset = 0, Options opt = {});

  const Superblock& superblock() const { return sb_; }
  BlockReader& device() { return *dev_; }
  uint64_t root() const { return sb_.root_ino; }

  // Geometry.
  Location inode_location(uint64_t ino) const;       // Errc::protocol for an impossible number
  uint64_t fsblock_to_byte(uint64_t fsb) const;      // checks agno/agbno
  uint32_t ag_length(uint32_t agno) const;

  Inode inode(uint64_t ino);
  // Data fork records (extents or bmbt format). Empty for local/dev forks.
  std::vector<BmapRecord> bmap(uint64_t ino);
  std::vector<BmapRecord> bmap(const Inode& ino);
  // Byte extents (device offsets relative to the start of the file system), flagged
  // unwritten, shared (via the refcount btree, split the way the kernel's FIEMAP
  // splits them) and last. Cached per inode; reread = true re-reads the inode, its
  // bmbt and the refcount btree from the device.
  std::vector<Extent> extents(uint64_t ino, bool reread = false);

  std::vector<DirEntry> list(uint64_t dir_ino);  // without "." and ".."
  std::optional<uint64_t> lookup(uint64_t dir_ino, std::string_view name);  // hashed for block/leaf/node
  uint64_t parent(uint64_t dir_ino);
  DirInfo dir_info(uint64_t dir_ino);
  std::string readlink(uint64_t ino);

  // Path from the root ("/a/b", "a/b" alike). Errc::invalid_argument for a missing
  // component ("No such file or directory"), a non-directory in the middle, or too
  // many symlinks ("symlink loop").
  uint64_t resolve(std::string_view path, const ResolveOptions& opt = {});

  // Lists `dir_ino`, recursing into subdirectories when `recursive`. Entries come in
  // on-disk order, a directory's entries right after it. A directory reached twice
  // (a loop) throws Errc::protocol.
  void walk(uint64_t dir_ino, const std::function<void(const WalkEntry&)>& fn, bool recursive = true);

  // Reads file bytes [off, off + len) (clipped at EOF) through the extents.
  std::vector<uint8_t> read_file(uint64_t ino, uint64_t off = 0, uint64_t len = UINT64_MAX);

  // Drops every cache (inodes, data fork maps, extents, AG headers) and re-reads the
  // superblock: call after the device changed underneath.
  void refresh();

 private:
  struct Agf {
    uint32_t length = 0;
    uint32_t refcount_root = 0;
    uint32_t refcount_level = 0;
  };
  struct Refc {
    uint32_t start, count, refcount;
  };

  std::vector<uint8_t> read(uint64_t byte, size_t len);
  bool crc_ok(const std::vector<uint8_t>& b, size_t crc_off) const;
  void check_uuid(const uint8_t* p, const std::string& what) const;
  void check_ino(uint64_t ino) const;
  const Agf& agf(uint32_t agno);
  void bmbt_walk(const Inode& ino, uint64_t fsb, int level, std::vector<BmapRecord>& out,
                 std::map<uint64_t, int>& seen);
  void refcount_walk(uint32_t agno, uint32_t agbno, int level, uint32_t lo, uint32_t hi,
                     std::vector<Refc>& out, std::map<uint32_t, int>& seen);
  std::vector<Refc> shared_ranges(uint32_t agno, uint32_t agbno, uint32_t len);
  void check_record(const Inode& ino, const BmapRecord& r);

  // Directories (xfs_dir.cpp).
  struct DirBlock;
  std::optional<std::vector<uint8_t>> read_dir_block(const Inode& dir, const std::vector<BmapRecord>& map,
                                                     uint64_t dablk, uint32_t nfsb, uint64_t* daddr);
  std::vector<uint8_t> read_da_block(const Inode& dir, const std::vector<BmapRecord>& map, uint64_t dablk,
                                     const char* what);
  void parse_shortform(const Inode& dir, std::vector<DirEntry>& out, uint64_t* parent);
  void parse_data_block(const Inode& dir, const std::vector<uint8_t>& blk, uint64_t daddr, bool single,
                        std::vector<DirEntry>* out, size_t at_offset, DirEntry* at_entry);
  std::optional<uint64_t> lookup_hashed(const Inode& dir, const std::vector<BmapRecord>& map,
                                        std::string_view name);
  std::optional<uint64_t> lookup_linear(const Inode& dir, std::string_view name);
  std::optional<uint64_t> check_dataptr(const Inode& dir, const std::vector<BmapRecord>& map, uint32_t addr,
                                        std::string_view name);
  std::vector<DirEntry> list_all(const Inode& dir, uint64_t* parent);  // with . and ..

  std::shared_ptr<BlockReader> dev_;
  Options opt_;
  Superblock sb_;
  std::map<uint32_t, Agf> agfs_;
  std::map<uint64_t, std::vector<Extent>> extent_cache_;
  std::map<uint64_t, Inode> inode_cache_;
  std::map<uint64_t, std::vector<BmapRecord>> bmap_cache_;
  static constexpr size_t kMaxCached = 1 << 16;  // entries per cache before it is dropped
};

// Full consistency traversal (like a read-only xfs_check of what this decoder uses):
// walks the tree from the root, reads every inode, every file's extents (and up to
// read_bytes of data), every symlink, and looks every directory entry up again
// through the hash index. Throws the first aisio::Error it meets.
struct ScanOptions {
  size_t max_entries = SIZE_MAX;      // Errc::invalid_argument past this many entries
  size_t max_lookups_per_dir = SIZE_MAX;
  uint64_t read_bytes = 0;            // per regular file
};
struct ScanStats {
  uint64_t files = 0, dirs = 0, symlinks = 0, special = 0, extents = 0, lookups = 0, bytes_read = 0;
};
ScanStats scan(Filesystem& fs, const ScanOptions& opt = {});

}  // namespace aisio::extents::xfs
