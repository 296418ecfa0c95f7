// The text tables of the reports: fixed-width columns, one line per row, and the
// human-readable numbers in them.
#pragma once
#include <string>
#include <vector>

namespace aisio::report {

struct Column {
  std::string title;
  unsigned width = 0;  // at least this many characters; 0: as wide as the cell (last column)
  bool left = false;   // left-aligned (names) or right-aligned (numbers)
  unsigned gap = 1;    // spaces before the column (none before the first)
};

class Table {
 public:
  explicit Table(std::vector<Column> columns) : columns_(std::move(columns)) {}
  std::string header() const;
  // One line; fewer cells than columns leave the rest empty, the last cell unpadded.
  std::string row(const std::vector<std::string>& cells) const;

 private:
  std::vector<Column> columns_;
};

// "1.23M", "456k", "789" (IOPS); "12.3us", "4.56ms" (ns values; "-" for none).
std::string human_count(double v);
std::string human_ns(double ns);

}  // namespace aisio::report
