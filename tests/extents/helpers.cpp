#include "extents/helpers.hpp"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <set>
#include <sstream>

namespace aisio::test {

CmdResult sh(const std::string& cmd) {
  CmdResult r;
  std::string full = "( " + cmd + " ) 2>&1";
  FILE* f = ::popen(full.c_str(), "r");
  if (!f) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), f)) > 0) r.out.append(buf.data(), n);
  int st = ::pclose(f);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') q += "'\\''";
    else q += c;
  }
  return q + "'";
}

bool have_tool(const std::string& name) { return sh("command -v " + quote(name)).status == 0; }
bool is_root() { return ::geteuid() == 0; }

TempDir::TempDir(const std::string& where) {
  const char* env = getenv("TMPDIR");
  std::string base = !where.empty() ? where : env && *env ? env : "/tmp";
  std::string tmpl = base + "/aisio-extents-XXXXXX";
  std::vector<char> b(tmpl.begin(), tmpl.end());
  b.push_back(0);
  if (!::mkdtemp(b.data())) throw std::runtime_error("mkdtemp failed");
  path_ = b.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::unique_ptr<LoopDevice> LoopDevice::attach(const std::string& image, uint64_t offset, uint64_t size,
                                               std::string* why) {
  if (!is_root()) {
    *why = "not root";
    return nullptr;
  }
  std::string cmd = "losetup -f --show -o " + std::to_string(offset);
  if (size) cmd += " --sizelimit " + std::to_string(size);
  auto r = sh(cmd + " " + quote(image));
  while (!r.out.empty() && (r.out.back() == '\n' || r.out.back() == ' ')) r.out.pop_back();
  if (r.status != 0 || r.out.rfind("/dev/", 0) != 0) {
    *why = "losetup: " + r.out;
    return nullptr;
  }
  auto d = std::unique_ptr<LoopDevice>(new LoopDevice);
  d->dev_ = r.out;
  return d;
}

bool LoopDevice::mount(const std::string& dir, std::string* why) {
  auto r = sh("mount -t xfs -o noatime " + quote(dev_) + " " + quote(dir));
  if (r.status != 0) {
    *why = "mount: " + r.out;
    return false;
  }
  dir_ = dir;
  return true;
}

void LoopDevice::umount() {
  if (dir_.empty()) return;
  for (int i = 0; i < 20; ++i) {
    if (sh("umount " + quote(dir_)).status == 0) break;
    ::usleep(100000);
    if (i == 19) sh("umount -l " + quote(dir_));
  }
  dir_.clear();
}

LoopDevice::~LoopDevice() {
  umount();
  if (!dev_.empty()) sh("losetup -d " + quote(dev_));
}

void fill_random(uint8_t* p, size_t n, uint64_t seed) {
  uint64_t x = seed;
  for (size_t i = 0; i < n; i += 8) {
    x += 0x9e3779b97f4a7c15ull;
    uint64_t z = x;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    for (size_t k = 0; k < 8 && i + k < n; ++k) p[i + k] = uint8_t(z >> (8 * k));
  }
}

uint64_t xxh64_bytes(const void* p, size_t n) { return XXH64(p, n, 0); }

std::vector<uint8_t> read_bytes(const std::string& path) {
  FILE* f = fopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("open " + path);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  std::vector<uint8_t> b(size_t(n > 0 ? n : 0));
  size_t got = b.empty() ? 0 : fread(b.data(), 1, b.size(), f);
  fclose(f);
  if (got != b.size()) throw std::runtime_error("short read of " + path);
  return b;
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& b) {
  FILE* f = fopen(path.c_str(), "wb");
  if (!f) throw std::runtime_error("create " + path);
  size_t put = b.empty() ? 0 : fwrite(b.data(), 1, b.size(), f);
  fclose(f);
  if (put != b.size()) throw std::runtime_error("short write of " + path);
}

uint64_t xxh64_file(const std::string& path, uint64_t* size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("open " + path);
  XXH64_state_t* st = XXH64_createState();
  XXH64_reset(st, 0);
  thread_local std::vector<char> buf(1 << 20);  // reused: a fresh 1 MiB per file is slow under ASan
  uint64_t total = 0;
  ssize_t n;
  while ((n = ::read(fd, buf.data(), buf.size())) > 0) {
    XXH64_update(st, buf.data(), size_t(n));
    total += uint64_t(n);
  }
  ::close(fd);
  uint64_t h = XXH64_digest(st);
  XXH64_freeState(st);
  if (size) *size = total;
  return h;
}

std::map<std::string, std::vector<extents::Extent>> xfs_bmap_all(const std::vector<std::string>& files) {
  std::map<std::string, std::vector<extents::Extent>> out;
  if (files.empty()) return out;
  TempDir t;
  std::string script = t / "cmds";
  {
    std::string text;
    for (auto& f : files) {
      if (f.find_first_of(" \t\n'\"") != std::string::npos) throw std::runtime_error("xfs_bmap_all: odd path " + f);
      text += "open -r " + f + "\nbmap -vp\nclose\n";
    }
    write_bytes(script, std::vector<uint8_t>(text.begin(), text.end()));
  }
  auto r = sh("xfs_io < " + quote(script));
  if (r.status != 0) throw std::runtime_error("xfs_io bmap failed: " + r.out.substr(0, 2000));
  //    0: [0..7]:          576..583          0 (576..583)           8 000000
  //    1: [8..15]:         hole                                     8
  static const std::regex line(R"(^\s*\d+: \[(\d+)\.\.(\d+)\]:\s+(hole|(\d+)\.\.(\d+))\s*(.*)$)");
  std::set<std::string> names(files.begin(), files.end());
  std::vector<extents::Extent>* cur = nullptr;
  std::istringstream in(r.out);
  std::string l;
  while (std::getline(in, l)) {
    auto colon = l.find(':');
    if (colon != std::string::npos && names.count(l.substr(0, colon))) {  // "path:" or "path: no extents"
      cur = &out[l.substr(0, colon)];
      continue;
    }
    std::smatch m;
    if (!cur || !std::regex_match(l, m, line) || m[3] == "hole") continue;
    uint64_t fs = std::stoull(m[1]), fe = std::stoull(m[2]), ps = std::stoull(m[4]);
    extents::Extent e{fs * 512, ps * 512, (fe - fs + 1) * 512, 0};
    // The FLAGS column is the last token: octal, 0100000 shared, 0010000 prealloc.
    std::string rest = m[6];
    auto pos = rest.find_last_of(' ');
    std::string flags = pos == std::string::npos ? rest : rest.substr(pos + 1);
    unsigned long f = flags.empty() ? 0 : std::stoul(flags, nullptr, 8);
    if (f & 0100000) e.flags |= extents::kExtShared;
    if (f & 0010000) e.flags |= extents::kExtUnwritten;
    cur->push_back(e);
  }
  if (out.size() != names.size())
    throw std::runtime_error("xfs_io bmap: output for " + std::to_string(out.size()) + " of " +
                             std::to_string(names.size()) + " files");
  return out;
}

std::vector<DbRec> xfs_db_bmap(const std::string& image, uint64_t ino) {
  auto r = sh("xfs_db -r -c " + quote("inode " + std::to_string(ino)) + " -c bmap " + quote(image));
  if (r.status != 0) throw std::runtime_error("xfs_db failed: " + r.out);
  // data offset 0 startblock 24 (0/24) count 1 flag 0
  static const std::regex line(R"(^data offset (\d+) startblock (\d+) \(\d+/\d+\) count (\d+) flag (\d+)\s*$)");
  std::vector<DbRec> out;
  std::istringstream in(r.out);
  std::string l;
  while (std::getline(in, l)) {
    std::smatch m;
    if (!std::regex_match(l, m, line)) continue;
    out.push_back({std::stoull(m[1]), std::stoull(m[2]), std::stoull(m[3]), m[4] == "1"});
  }
  return out;
}

void ProtoImage::file(const std::string& path, std::vector<uint8_t> data, int mode) {
  std::string src = staging_ + (data.empty() ? std::string("/empty") : "/src" + std::to_string(staged_++));
  int fd = ::open(src.c_str(), O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) throw std::runtime_error("create " + src);
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n <= 0) throw std::runtime_error("write " + src);
    done += size_t(n);
  }
  ::close(fd);
  nodes_.push_back({path, Node{'-', mode, src, std::move(data)}});
}
void ProtoImage::dir(const std::string& path, int mode) { nodes_.push_back({path, Node{'d', mode, "", {}}}); }
void ProtoImage::symlink(const std::string& path, const std::string& target) {
  nodes_.push_back({path, Node{'l', 0777, target, {}}});
}
void ProtoImage::fifo(const std::string& path) { nodes_.push_back({path, Node{'p', 0600, "", {}}}); }
void ProtoImage::chardev(const std::string& path, int maj, int min) {
  nodes_.push_back({path, Node{'c', 0666, std::to_string(maj) + " " + std::to_string(min), {}}});
}

void ProtoImage::emit(const std::string& dir, int depth, std::string& out) const {
  std::string ind(size_t(depth), ' ');
  for (const auto& [path, n] : nodes_) {
    auto slash = path.rfind('/');
    std::string parent = slash == std::string::npos ? "" : path.substr(0, slash);
    if (parent != dir) continue;
    std::string name = slash == std::string::npos ? path : path.substr(slash + 1);
    char mode[8];
    snprintf(mode, sizeof mode, "%c--%03o", n.type, n.mode);
    out += ind + name + " " + mode + " 0 0";
    if (!n.arg.empty()) out += " " + n.arg;
    out += "\n";
    if (n.type == 'd') {
      emit(path, depth + 1, out);
      out += ind + "$\n";
    }
  }
}

std::string ProtoImage::protofile() const {
  std::string out = "/dev/null\n0 0\nd--755 0 0\n";
  emit("", 1, out);
  out += "$\n";
  return out;
}

std::string ProtoImage::make(const std::string& image, uint64_t size, const std::string& mkfs_opts) {
  std::string proto = staging_ + "/protofile";
  {
    FILE* f = fopen(proto.c_str(), "w");
    if (!f) return "cannot write " + proto;
    auto text = protofile();
    fwrite(text.data(), 1, text.size(), f);
    fclose(f);
  }
  int fd = ::open(image.c_str(), O_CREAT | O_RDWR | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || ::ftruncate(fd, off_t(size)) != 0) return "cannot create " + image;
  ::close(fd);
  return fil::mkfs_xfs(image, mkfs_opts + " -p " + quote(proto));
}

std::string dump(const std::vector<extents::Extent>& v) {
  std::string s;
  for (auto& e : v)
    s += "  [" + std::to_string(e.logical) + "+" + std::to_string(e.length) + "] @" + std::to_string(e.physical) +
         " " + extents::flag_names(e.flags) + "\n";
  return s.empty() ? "  (none)\n" : s;
}

}  // namespace aisio::test
