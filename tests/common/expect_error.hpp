// The one way tests check a refusal: fn must throw aisio::Error with `code`, and the
// message a user reads must contain `needle`. A bare "it threw an Error" check passes
// for any error at all, including the wrong one.
#pragma once
#include <gtest/gtest.h>

#include <string>

#include "common/error.hpp"

namespace aisio::test {

template <class F>
void expect_error(F&& fn, Errc code, const std::string& needle) {
  try {
    fn();
    ADD_FAILURE() << "no error (expected " << errc_name(code) << ": " << needle << ")";
  } catch (const Error& e) {
    EXPECT_STREQ(errc_name(e.code()), errc_name(code)) << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << "message: " << e.what();
  }
}

}  // namespace aisio::test
