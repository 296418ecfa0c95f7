#include "report/table.hpp"

#include <fmt/format.h>

namespace aisio::report {

std::string Table::header() const {
  std::vector<std::string> titles;
  for (const auto& c : columns_) titles.push_back(c.title);
  return row(titles);
}

std::string Table::row(const std::vector<std::string>& cells) const {
  std::string s;
  for (size_t i = 0; i < cells.size() && i < columns_.size(); ++i) {
    const Column& c = columns_[i];
    if (i) s.append(c.gap, ' ');
    const std::string& v = cells[i];
    size_t pad = v.size() < c.width ? c.width - v.size() : 0;
    if (i + 1 == cells.size() && cells.size() < columns_.size()) pad = 0;  // a short row's last cell
    if (c.left) {
      s += v;
      s.append(pad, ' ');
    } else {
      s.append(pad, ' ');
      s += v;
    }
  }
  return s + "\n";
}

std::string human_count(double v) {
  if (v >= 1e9) return fmt::format("{:.2f}G", v / 1e9);
  if (v >= 1e6) return fmt::format("{:.2f}M", v / 1e6);
  if (v >= 1e4) return fmt::format("{:.1f}k", v / 1e3);
  return fmt::format("{:.0f}", v);
}

std::string human_ns(double ns) {
  if (ns <= 0) return "-";
  if (ns < 1e3) return fmt::format("{:.0f}ns", ns);
  if (ns < 1e6) return fmt::format("{:.1f}us", ns / 1e3);
  if (ns < 1e9) return fmt::format("{:.2f}ms", ns / 1e6);
  return fmt::format("{:.2f}s", ns / 1e9);
}

}  // namespace aisio::report
