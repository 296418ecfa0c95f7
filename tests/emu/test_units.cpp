#include <gtest/gtest.h>

#include "common/expect_error.hpp"
#include "common/units.hpp"

using aisio::test::expect_error;

namespace aisio::tools {
namespace {

TEST(Units, Sizes) {
  EXPECT_EQ(parse_size("4096"), 4096u);
  EXPECT_EQ(parse_size("512K"), 512u << 10);
  EXPECT_EQ(parse_size("512M"), 512ull << 20);
  EXPECT_EQ(parse_size("1G"), 1ull << 30);
  EXPECT_EQ(parse_size("1g"), 1ull << 30);
  EXPECT_EQ(parse_size("1.5G"), 3ull << 29);
  EXPECT_EQ(parse_size("2TiB"), 2ull << 40);
  EXPECT_EQ(parse_size("1GB"), 1000000000u);
  EXPECT_EQ(parse_size("100B"), 100u);
  expect_error([] { parse_size(""); }, Errc::invalid_argument, "invalid size ''");
  expect_error([] { parse_size("G"); }, Errc::invalid_argument, "invalid size 'G'");
  expect_error([] { parse_size("1X"); }, Errc::invalid_argument, "invalid size '1X'");
  expect_error([] { parse_size("-1"); }, Errc::invalid_argument, "invalid size '-1'");
  expect_error([] { parse_size("0.3"); }, Errc::invalid_argument, "size '0.3' is not a whole number of bytes");
}

TEST(Units, Rates) {
  EXPECT_DOUBLE_EQ(parse_rate("3.86M"), 3.86e6);
  EXPECT_DOUBLE_EQ(parse_rate("14.5G"), 14.5e9);
  EXPECT_DOUBLE_EQ(parse_rate("14.5GB/s"), 14.5e9);
  EXPECT_DOUBLE_EQ(parse_rate("1GiB/s"), double(1ull << 30));
  EXPECT_DOUBLE_EQ(parse_rate("250000"), 250000.0);
  expect_error([] { parse_rate("fast"); }, Errc::invalid_argument, "invalid rate 'fast'");
}

TEST(Units, Format) {
  EXPECT_EQ(format_size(512), "512 B");
  EXPECT_EQ(format_size(1ull << 30), "1 GiB");
  EXPECT_EQ(format_size(3ull << 29), "1.5 GiB");
}

}  // namespace
}  // namespace aisio::tools
