// aisio xfs {info,ls,extents,cat} IMAGE|DEVICE ...: read an unmounted XFS file system
// with the on-disk decoder.
#include <fmt/format.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "common/error.hpp"
#include "extents/translate.hpp"
#include "extents/xfs.hpp"
#include "extents/xfs_format.hpp"
#include "tools/command.hpp"

namespace aisio::tools {
namespace {
using namespace aisio::extents;
namespace X = aisio::extents::xfs;

struct Common {
  std::string image;
  uint64_t offset = 0;
  bool json = false;
};

void info(const Common& c) {
  auto fs = X::Filesystem::open(c.image, c.offset);
  const auto& s = fs->superblock();
  if (c.json) {
    nlohmann::json j{{"uuid", s.uuid_string()},     {"label", s.label},
                     {"block_size", s.block_size},  {"data_blocks", s.data_blocks},
                     {"ag_count", s.ag_count},      {"ag_blocks", s.ag_blocks},
                     {"sector_size", s.sector_size}, {"inode_size", s.inode_size},
                     {"dir_block_size", s.dir_block_size}, {"root_ino", s.root_ino},
                     {"features", s.feature_names()}, {"icount", s.icount},
                     {"ifree", s.ifree},            {"free_blocks", s.fdblocks}};
    fmt::print("{}\n", j.dump(2));
    return;
  }
  std::string feats;
  for (auto& f : s.feature_names()) feats += (feats.empty() ? "" : " ") + f;
  fmt::print("uuid {}  label '{}'\n", s.uuid_string(), s.label);
  fmt::print("blocks {} x {} B in {} AGs of {} blocks; sector {} B, inode {} B, dir block {} B\n", s.data_blocks,
             s.block_size, s.ag_count, s.ag_blocks, s.sector_size, s.inode_size, s.dir_block_size);
  fmt::print("root inode {}; inodes {} ({} free); free blocks {}\n", s.root_ino, s.icount, s.ifree, s.fdblocks);
  fmt::print("features: {}\n", feats);
}

struct LsOpts : Common {
  std::string dir = "/";
  bool recursive = false;
  bool longfmt = false;
};

void ls(const LsOpts& o) {
  auto fs = X::Filesystem::open(o.image, o.offset);
  uint64_t d = fs->resolve(o.dir);
  if (!fs->inode(d).is_dir()) throw Error(Errc::invalid_argument, o.dir + ": not a directory");
  nlohmann::json arr = nlohmann::json::array();
  fs->walk(
      d,
      [&](const X::WalkEntry& w) {
        std::optional<X::Inode> in;
        if (o.longfmt || o.json) in = fs->inode(w.entry.ino);
        std::string target;
        if (in && in->is_symlink()) target = fs->readlink(w.entry.ino);
        if (o.json) {
          nlohmann::json j{{"path", w.path}, {"ino", w.entry.ino}, {"type", X::file_type_name(w.entry.type)},
                           {"size", in->size}, {"mode", in->mode & 07777}, {"nlink", in->nlink},
                           {"mtime_ns", in->mtime_ns}};
          if (!target.empty()) j["target"] = target;
          arr.push_back(std::move(j));
          return;
        }
        if (o.longfmt)
          fmt::print("{:>12} {:<8} {:04o} {:>3} {:>12} {}{}\n", w.entry.ino, X::file_type_name(w.entry.type),
                     in->mode & 07777, in->nlink, in->size, w.path, target.empty() ? "" : " -> " + target);
        else
          fmt::print("{:>12} {:<8} {}\n", w.entry.ino, X::file_type_name(w.entry.type), w.path);
      },
      o.recursive);
  if (o.json) fmt::print("{}\n", arr.dump(2));
}

struct ExtOpts : Common {
  std::string path;
  uint32_t lba_size = 512;
  bool no_follow = false;
  bool holes = false;
};

void extents_cmd(const ExtOpts& o) {
  auto fs = X::Filesystem::open(o.image, o.offset);
  X::ResolveOptions ro;
  ro.follow_final = !o.no_follow;
  uint64_t ino = fs->resolve(o.path, ro);
  X::Inode in = fs->inode(ino);
  if (!in.is_reg() && !in.is_dir() && !in.is_symlink())
    throw Error(Errc::invalid_argument, o.path + ": has no data fork extents (" + X::file_type_name(in.type()) + ")");
  auto ext = fs->extents(ino);
  auto list = o.holes ? fill_holes(ext, in.size) : ext;
  const auto& sb = fs->superblock();
  uint64_t bs = sb.block_size, lba = o.lba_size;
  if (lba < 512 || (lba & (lba - 1))) throw Error(Errc::invalid_argument, "--lba-size must be a power of two >= 512");
  if (o.json) {
    nlohmann::json ex = nlohmann::json::array();
    for (const auto& e : list) {
      nlohmann::json x{{"logical", e.logical}, {"length", e.length}, {"flags", flag_list(e.flags)}};
      if (!e.has(kExtHole)) {
        uint64_t d = e.physical + o.offset;
        x["physical"] = e.physical;
        x["fsblock_daddr"] = e.physical / 512;
        x["slba"] = d / lba;
        x["nlb"] = (d % lba + e.length + lba - 1) / lba;
      }
      ex.push_back(std::move(x));
    }
    nlohmann::json j{{"path", o.path}, {"ino", ino},           {"size", in.size},     {"block_size", bs},
                     {"lba_size", lba}, {"device_offset", o.offset}, {"format", in.format}, {"extents", ex}};
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("{}: inode {}, {} bytes, {} extents ({} fork), block {} B, LBA {} B, fs at byte {}\n", o.path, ino,
             in.size, ext.size(), in.format == X::kFmtBtree ? "btree" : in.format == X::kFmtLocal ? "local" : "extents",
             bs, lba, o.offset);
  if (list.empty()) {
    fmt::print(" no extents\n");
    return;
  }
  fmt::print(" {:>4}: {:<22} {:<22} {:>3} {:<18} {:<24} {:>8} {}\n", "EXT", "FILE-OFFSET", "BLOCK-RANGE", "AG",
             "AG-OFFSET", "LBA-RANGE", "TOTAL", "FLAGS");
  for (size_t i = 0; i < list.size(); ++i) {
    const auto& e = list[i];
    std::string fo_s = fmt::format("[{}..{}]", e.logical / bs, e.end() / bs - 1);
    if (e.has(kExtHole)) {
      fmt::print(" {:>4}: {:<22} {:<22} {:>3} {:<18} {:<24} {:>8} {}\n", i, fo_s, "hole", "", "", "",
                 (e.length + bs - 1) / bs, flag_names(e.flags));
      continue;
    }
    uint64_t fsb0 = e.physical / bs;
    uint64_t ag = fsb0 / sb.ag_blocks, agb = fsb0 % sb.ag_blocks;
    uint64_t d = e.physical + o.offset;
    fmt::print(" {:>4}: {:<22} {:<22} {:>3} {:<18} {:<24} {:>8} {}\n", i, fo_s,
               fmt::format("{}..{}", fsb0, fsb0 + e.length / bs - 1), ag,
               fmt::format("({}..{})", agb, agb + e.length / bs - 1),
               fmt::format("{}..{}", d / lba, (d + e.length + lba - 1) / lba - 1), e.length / bs, flag_names(e.flags));
  }
}

void check(const Common& c) {
  auto fs = X::Filesystem::open(c.image, c.offset);
  auto st = X::scan(*fs, {.read_bytes = 0});
  if (c.json) {
    fmt::print("{}\n", nlohmann::json{{"files", st.files},
                                      {"dirs", st.dirs},
                                      {"symlinks", st.symlinks},
                                      {"special", st.special},
                                      {"extents", st.extents},
                                      {"lookups", st.lookups}}
                           .dump(2));
    return;
  }
  fmt::print("ok: {} files ({} extents), {} directories ({} hashed lookups), {} symlinks, {} special files\n",
             st.files, st.extents, st.dirs, st.lookups, st.symlinks, st.special);
}

struct CatOpts : Common {
  std::string path;
};

void cat(const CatOpts& o) {
  auto fs = X::Filesystem::open(o.image, o.offset);
  uint64_t ino = fs->resolve(o.path);
  X::Inode in = fs->inode(ino);
  const uint64_t chunk = 4 << 20;
  for (uint64_t off = 0; off < in.size; off += chunk) {
    auto b = fs->read_file(ino, off, chunk);
    size_t done = 0;
    while (done < b.size()) {
      ssize_t n = ::write(1, b.data() + done, b.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        throw_errno("write stdout");
      }
      done += size_t(n);
    }
  }
}

void add_common(CLI::App* c, Common& o, bool json = true) {
  c->add_option("image", o.image, "XFS image file or block device (unmounted)")->required();
  c->add_option("--offset", o.offset, "Byte offset of the file system in the image (partition start)");
  if (json) c->add_flag("--json", o.json, "JSON output");
}

CommandRegistrar reg(61, [](CLI::App& app) {
  auto* x = app.add_subcommand("xfs", "Read an unmounted XFS file system (image or device) with the on-disk decoder");
  x->require_subcommand(1);

  auto io = std::make_shared<Common>();
  auto* i = x->add_subcommand("info", "Superblock summary");
  add_common(i, *io);
  i->callback([io] { info(*io); });

  auto lo = std::make_shared<LsOpts>();
  auto* l = x->add_subcommand("ls", "List a directory (-r: recursively)");
  add_common(l, *lo);
  l->add_option("dir", lo->dir, "Directory path inside the file system (default /)");
  l->add_flag("-r,--recursive", lo->recursive, "Recurse into subdirectories");
  l->add_flag("-l,--long", lo->longfmt, "Show mode, link count, size and symlink targets");
  l->callback([lo] { ls(*lo); });

  auto eo = std::make_shared<ExtOpts>();
  auto* e = x->add_subcommand("extents", "Show a file's extents from the on-disk data fork");
  add_common(e, *eo);
  e->add_option("path", eo->path, "Path inside the file system")->required();
  e->add_option("--lba-size", eo->lba_size, "LBA size for the LBA column (default 512)");
  e->add_flag("--no-follow", eo->no_follow, "Do not follow a symlink in the last component");
  e->add_flag("--holes", eo->holes, "List holes as extents");
  e->callback([eo] { extents_cmd(*eo); });

  auto ko = std::make_shared<Common>();
  auto* k = x->add_subcommand("check", "Verify everything the decoder reads (CRCs, btrees, directories, symlinks)");
  add_common(k, *ko);
  k->callback([ko] { check(*ko); });

  auto co = std::make_shared<CatOpts>();
  auto* c = x->add_subcommand("cat", "Write a file's contents to stdout (read through its extents)");
  add_common(c, *co, false);
  c->add_option("path", co->path, "Path inside the file system")->required();
  c->callback([co] { cat(*co); });
});

}  // namespace
}  // namespace aisio::tools
