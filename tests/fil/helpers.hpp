// Test helpers for tests/fil.
#pragma once
#include <stdlib.h>
#include <xxhash.h>

#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace aisio::filtest {

class TempDir {
 public:
  TempDir() {
    std::string t = (std::filesystem::temp_directory_path() / "aisio-fil-test-XXXXXX").string();
    std::vector<char> b(t.begin(), t.end());
    b.push_back(0);
    if (!mkdtemp(b.data())) throw std::runtime_error("mkdtemp");
    path = b.data();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string operator/(const std::string& s) const { return path + "/" + s; }
  std::string path;
};

}  // namespace aisio::filtest
