# Project include for the static (guest) build, passed by testbed/build-static as
#   -DCMAKE_PROJECT_INCLUDE=<repo>/testbed/static-deps.cmake
# Debian ships libfmt only as a shared library, so the static build uses fmt
# header-only: defining fmt::fmt here makes find_package(fmt) keep this target.
if(NOT TARGET fmt::fmt)
  add_library(fmt::fmt INTERFACE IMPORTED)
  set_target_properties(fmt::fmt PROPERTIES INTERFACE_COMPILE_DEFINITIONS "FMT_HEADER_ONLY=1")
  add_library(fmt::fmt-header-only INTERFACE IMPORTED)
  set_target_properties(fmt::fmt-header-only PROPERTIES INTERFACE_COMPILE_DEFINITIONS "FMT_HEADER_ONLY=1")
endif()

# find_library() calls (xxhash, uring, ...) must pick the static archives.
set(CMAKE_FIND_LIBRARY_SUFFIXES .a)
