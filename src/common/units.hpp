// Parsing of sizes and rates given on the command line.
//
//   parse_size("4096") == 4096          parse_rate("3.86M")  == 3.86e6
//   parse_size("512K") == 512 << 10     parse_rate("14.5G")  == 14.5e9   (14.5 GB/s)
//   parse_size("1.5G") == 1.5 << 30     parse_rate("1GiB/s") == 1 << 30
//   parse_size("1GB")  == 1000000000
//
// Sizes use binary multiples for a bare K/M/G/T/P (and KiB, MiB, ...) and decimal ones
// for KB, MB, GB, ...; rates (IOPS, bytes/s, as datasheets quote them) use decimal
// multiples unless written KiB, MiB, .... Both throw aisio::Error(invalid_argument).
#pragma once
#include <cctype>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace aisio {

namespace units_detail {
inline long double parse(std::string_view text, bool bare_binary, bool rate, const char* what) {
  auto bad = [&]() -> long double {
    throw Error(Errc::invalid_argument, std::string("invalid ") + what + " '" + std::string(text) + "'");
  };
  std::string s(text);
  while (!s.empty() && s.back() == ' ') s.pop_back();
  if (rate && s.size() > 2 && s.substr(s.size() - 2) == "/s") s.resize(s.size() - 2);
  if (s.empty() || !(std::isdigit(static_cast<unsigned char>(s[0])) || s[0] == '.')) return bad();
  char* end = nullptr;
  long double v = std::strtold(s.c_str(), &end);
  std::string suffix(end);
  if (!suffix.empty() && suffix[0] == ' ') suffix.erase(0, 1);
  if (!std::isfinite(v) || v < 0) return bad();
  if (suffix.empty()) return v;
  static const std::string letters = "KMGTP";
  size_t exp = letters.find(char(std::toupper(static_cast<unsigned char>(suffix[0]))));
  if (exp == std::string::npos) return suffix == "B" ? v : bad();
  std::string rest = suffix.substr(1);
  bool binary;
  if (rest.empty()) binary = bare_binary;
  else if (rest == "i" || rest == "iB") binary = true;
  else if (rest == "B") binary = false;
  else return bad();
  return v * std::pow(binary ? 1024.0L : 1000.0L, static_cast<long double>(exp + 1));
}
}  // namespace units_detail

// Bytes; must come out a whole number.
inline uint64_t parse_size(std::string_view text) {
  long double v = units_detail::parse(text, true, false, "size");
  if (v != std::floor(v) || v > 18446744073709551615.0L)
    throw Error(Errc::invalid_argument, "size '" + std::string(text) + "' is not a whole number of bytes");
  return uint64_t(v);
}

// A per-second quantity (commands/s, bytes/s); "/s" may be appended.
inline double parse_rate(std::string_view text) { return double(units_detail::parse(text, false, true, "rate")); }

// "512 B", "4 KiB", "1.5 GiB" (binary units, up to 3 significant decimals).
inline std::string format_size(uint64_t bytes) {
  static const char* names[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  long double v = bytes;
  int i = 0;
  while (v >= 1024 && i < 5) {
    v /= 1024;
    ++i;
  }
  char buf[32];
  if (v == std::floor(v)) std::snprintf(buf, sizeof buf, "%.0Lf %s", v, names[i]);
  else std::snprintf(buf, sizeof buf, "%.3Lg %s", v, names[i]);
  return buf;
}

}  // namespace aisio
