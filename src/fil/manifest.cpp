#include "fil/manifest.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <charconv>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.hpp"
#include "common/fd.hpp"
#include "fil/content.hpp"

namespace aisio::fil {

std::string hex64(uint64_t v) { return fmt::format("{:016x}", v); }

uint64_t parse_hex64(std::string_view s) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v, 16);
  if (s.empty() || s.size() > 16 || ec != std::errc() || end != s.data() + s.size())
    throw Error(Errc::protocol, "manifest: bad hash '" + std::string(s) + "'");
  return v;
}

uint64_t Manifest::total_bytes() const {
  uint64_t t = 0;
  for (const auto& f : files) t += f.size;
  return t;
}

std::string Manifest::dump() const {
  nlohmann::ordered_json j;
  j["format"] = "aisio-fil-manifest";
  j["version"] = 1;
  j["seed"] = seed;
  j["content"] = "splitmix64-v1";
  j["hash"] = "xxh3-64";
  j["hash_block"] = kHashBlock;
  j["generator"] = generator;
  j["file_count"] = files.size();
  j["total_bytes"] = total_bytes();
  auto arr = nlohmann::ordered_json::array();
  for (const auto& f : files) {
    nlohmann::ordered_json e;
    e["path"] = f.path;
    e["size"] = f.size;
    e["xxh3"] = hex64(f.xxh3);
    e["kind"] = f.kind;
    if (f.key) e["key"] = hex64(*f.key);
    if (f.sparse) {
      auto segs = nlohmann::ordered_json::array();
      for (const auto& s : f.segments) segs.push_back({s.off, s.len});
      e["segments"] = std::move(segs);
    }
    if (!f.blocks.empty()) {
      auto b = nlohmann::ordered_json::array();
      for (uint64_t h : f.blocks) b.push_back(hex64(h));
      e["blocks"] = std::move(b);
    }
    arr.push_back(std::move(e));
  }
  j["files"] = std::move(arr);
  return j.dump(1) + "\n";
}

Manifest Manifest::parse(std::string_view text) {
  Manifest m;
  try {
    auto j = nlohmann::json::parse(text);
    if (j.value("format", "") != "aisio-fil-manifest")
      throw Error(Errc::protocol, "not an aisio fil manifest (format field missing)");
    if (j.value("version", 0) != 1)
      throw Error(Errc::protocol, fmt::format("manifest version {} is not supported", j.value("version", 0)));
    if (j.contains("content") && j["content"] != "splitmix64-v1")
      throw Error(Errc::protocol, "manifest content generator is not splitmix64-v1");
    m.seed = j.value("seed", uint64_t(0));
    m.generator = j.value("generator", "");
    for (const auto& e : j.at("files")) {
      ManifestFile f;
      f.path = e.at("path").get<std::string>();
      f.size = e.at("size").get<uint64_t>();
      f.xxh3 = parse_hex64(e.at("xxh3").get<std::string>());
      f.kind = e.value("kind", "regular");
      if (e.contains("key")) f.key = parse_hex64(e["key"].get<std::string>());
      if (e.contains("segments")) {
        f.sparse = true;
        for (const auto& s : e["segments"]) f.segments.push_back({s.at(0).get<uint64_t>(), s.at(1).get<uint64_t>()});
      }
      if (e.contains("blocks"))
        for (const auto& b : e["blocks"]) f.blocks.push_back(parse_hex64(b.get<std::string>()));
      if (f.path.empty() || f.path[0] == '/' || f.path.find("..") != std::string::npos)
        throw Error(Errc::protocol, "manifest: bad file path '" + f.path + "'");
      m.files.push_back(std::move(f));
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(Errc::protocol, std::string("manifest: ") + e.what());
  }
  return m;
}

Manifest Manifest::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(Errc::system, fmt::format("cannot open manifest {}: {}", path, std::strerror(errno)));
  std::stringstream ss;
  ss << in.rdbuf();
  try {
    return parse(ss.str());
  } catch (const Error& e) {
    throw Error(e.code(), path + ": " + e.what());
  }
}

void Manifest::save(const std::string& path) const {
  std::string tmp = path + ".tmp", text = dump();
  Fd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) throw_errno("create " + tmp);
  pwrite_all(fd.get(), text.data(), text.size(), 0, tmp);
  if (::fsync(fd.get()) != 0 || ::close(fd.release()) != 0) throw_errno("write " + tmp);
  if (::rename(tmp.c_str(), path.c_str()) != 0) throw_errno("rename " + tmp);
}

bool Manifest::expected(const ManifestFile& f, uint64_t off, uint8_t* out, size_t n) {
  if (!f.key) return false;
  if (off > f.size || n > f.size - off) return false;
  if (!f.sparse) {
    fill_content(*f.key, off, out, n);
    return true;
  }
  std::memset(out, 0, n);
  for (const auto& s : f.segments) {
    uint64_t a = std::max(off, s.off), b = std::min(off + n, s.off + s.len);
    if (a < b) fill_content(*f.key, a, out + (a - off), size_t(b - a));
  }
  return true;
}

}  // namespace aisio::fil
