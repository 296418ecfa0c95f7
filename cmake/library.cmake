# libaisio.so: every layer library (src/FOLDER's static libraries, src/tools' aside) in
# one shared library, its public headers as include/aisio/FOLDER/*.hpp, and what
# `cmake --install` puts on a system: the library, headers, aisio.pc, aisioConfig.cmake
# (find_package(aisio) -> aisio::aisio), the aisio and homid programs, homid's systemd
# unit (not enabled) and example configuration.
#
# The programs and the tests keep linking the static layer libraries: the CLI and homid
# stay self-contained (the QEMU guests run them), and the tests see the internals they
# test. The shared library is made of the same object files (the layers are compiled
# position-independent for it, cmake/layers.cmake), so nothing is compiled twice.
#
# Hooks for other parts of the project (python/CMakeLists.txt):
#   aisio::aisio              the shared library, also inside this build
#   AISIO_PYTHON_SITEDIR      where the Python package goes, relative to the prefix
#   install(... COMPONENT python)   lands in `cmake --install` and in the .deb
#   set_property(GLOBAL APPEND PROPERTY AISIO_DEB_DEPENDS "python3-numpy")
#                             a Debian package the .deb must depend on beyond what
#                             dpkg-shlibdeps finds (cmake/package.cmake)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

get_property(aisio_layer_libs GLOBAL PROPERTY AISIO_LAYER_LIBRARIES)
get_property(aisio_public_headers GLOBAL PROPERTY AISIO_PUBLIC_HEADERS)

# The installed include tree, laid out in the build tree (cmake/stage-headers.cmake
# says why the includes are rewritten). Rebuilt when a public header changes.
set(AISIO_STAGED_INCLUDE ${CMAKE_BINARY_DIR}/install-include)
set(aisio_header_list ${CMAKE_BINARY_DIR}/aisio-public-headers.txt)
string(JOIN "\n" aisio_header_lines ${aisio_public_headers})
file(CONFIGURE OUTPUT ${aisio_header_list} CONTENT "${aisio_header_lines}\n")
list(TRANSFORM aisio_public_headers PREPEND ${PROJECT_SOURCE_DIR}/src/ OUTPUT_VARIABLE aisio_header_sources)
add_custom_command(
  OUTPUT ${CMAKE_BINARY_DIR}/install-include.stamp
  BYPRODUCTS ${AISIO_STAGED_INCLUDE}/aisio/aisio.hpp ${AISIO_STAGED_INCLUDE}/aisio/version.hpp
  COMMAND ${CMAKE_COMMAND} -DSRC=${PROJECT_SOURCE_DIR} -DLIST=${aisio_header_list}
          -DOUT=${AISIO_STAGED_INCLUDE} -DVERSION=${PROJECT_VERSION}
          -P ${CMAKE_CURRENT_LIST_DIR}/stage-headers.cmake
  COMMAND ${CMAKE_COMMAND} -E touch ${CMAKE_BINARY_DIR}/install-include.stamp
  DEPENDS ${aisio_header_sources} ${aisio_header_list} ${CMAKE_CURRENT_LIST_DIR}/stage-headers.cmake
  COMMENT "aisio: installed include tree"
  VERBATIM)
add_custom_target(aisio_headers DEPENDS ${CMAKE_BINARY_DIR}/install-include.stamp)

# SONAME: libaisio.so.MAJOR, or libaisio.so.0.MINOR while the major version is 0 (no
# ABI promise between 0.x releases, so each minor release gets its own SONAME).
if(PROJECT_VERSION_MAJOR EQUAL 0)
  set(AISIO_SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
else()
  set(AISIO_SOVERSION ${PROJECT_VERSION_MAJOR})
endif()

set(aisio_objects "")
foreach(lib IN LISTS aisio_layer_libs)
  list(APPEND aisio_objects $<TARGET_OBJECTS:${lib}>)
endforeach()
add_library(aisio_shared SHARED ${CMAKE_CURRENT_LIST_DIR}/version.cpp ${aisio_objects})
add_library(aisio::aisio ALIAS aisio_shared)
add_dependencies(aisio_shared aisio_headers)
set_target_properties(aisio_shared PROPERTIES
  OUTPUT_NAME aisio EXPORT_NAME aisio
  VERSION ${PROJECT_VERSION} SOVERSION ${AISIO_SOVERSION}
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/lib)
target_compile_definitions(aisio_shared PRIVATE AISIO_VERSION_STRING="${PROJECT_VERSION}")
# The layers' own link dependencies (fmt, liburing, xxhash, the CUDA runtime ...): their
# archives add no object (the objects above define every symbol) but bring those along.
# An undefined symbol is a link error here, not in the program that loads the library.
target_link_libraries(aisio_shared PRIVATE ${aisio_layer_libs})
target_link_options(aisio_shared PRIVATE LINKER:--no-undefined)
# What a program using the public headers needs: they include fmt and nlohmann/json.
target_link_libraries(aisio_shared PUBLIC fmt::fmt nlohmann_json::nlohmann_json Threads::Threads)
target_compile_features(aisio_shared PUBLIC cxx_std_20)
target_include_directories(aisio_shared PUBLIC
  $<BUILD_INTERFACE:${AISIO_STAGED_INCLUDE}>
  $<BUILD_INTERFACE:${AISIO_PUBLIC_INCLUDE}>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)

set(AISIO_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/aisio)
set(AISIO_PYTHON_SITEDIR lib/python3/dist-packages CACHE STRING
    "Where the Python package is installed, relative to the install prefix (Debian's site directory for /usr)")

install(TARGETS aisio_shared EXPORT aisioTargets LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(DIRECTORY ${AISIO_STAGED_INCLUDE}/aisio DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT aisioTargets NAMESPACE aisio:: DESTINATION ${AISIO_CMAKE_DIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/aisioConfig.cmake.in
  ${CMAKE_BINARY_DIR}/aisioConfig.cmake INSTALL_DESTINATION ${AISIO_CMAKE_DIR})
# Same minor version: see the SONAME above.
write_basic_package_version_file(${CMAKE_BINARY_DIR}/aisioConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/aisioConfig.cmake ${CMAKE_BINARY_DIR}/aisioConfigVersion.cmake
        DESTINATION ${AISIO_CMAKE_DIR})

install(TARGETS aisio RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

# aisio.pc and homid's unit name installed paths: they are written at install time, when
# the prefix is known (`cmake --install --prefix P`, or /usr for the .deb).
install(CODE "
  set(prefix \"\${CMAKE_INSTALL_PREFIX}\")
  set(libdir_rel [[${CMAKE_INSTALL_LIBDIR}]])
  set(includedir_rel [[${CMAKE_INSTALL_INCLUDEDIR}]])
  set(version [[${PROJECT_VERSION}]])
  configure_file([[${CMAKE_CURRENT_LIST_DIR}/aisio.pc.in]] [[${CMAKE_BINARY_DIR}/installed/aisio.pc]] @ONLY)
  file(INSTALL DESTINATION \"\${prefix}/${CMAKE_INSTALL_LIBDIR}/pkgconfig\" TYPE FILE
       FILES [[${CMAKE_BINARY_DIR}/installed/aisio.pc]])
  file(READ [[${PROJECT_SOURCE_DIR}/packaging/homid.service]] unit)
  string(REPLACE /usr/sbin/homid \"\${prefix}/${CMAKE_INSTALL_SBINDIR}/homid\" unit \"\${unit}\")
  string(REPLACE /usr/share/doc/aisio \"\${prefix}/${CMAKE_INSTALL_DOCDIR}\" unit \"\${unit}\")
  file(WRITE [[${CMAKE_BINARY_DIR}/installed/homid.service]] \"\${unit}\")
  file(INSTALL DESTINATION \"\${prefix}/lib/systemd/system\" TYPE FILE
       FILES [[${CMAKE_BINARY_DIR}/installed/homid.service]])
")
# An example: it names a PCI function that is not the reader's; homid's unit reads
# /etc/homid/homid.toml, which the administrator writes from it.
install(FILES ${PROJECT_SOURCE_DIR}/packaging/homid.toml DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)
install(FILES ${PROJECT_SOURCE_DIR}/src/homi/protocol.md DESTINATION ${CMAKE_INSTALL_DOCDIR}/homi)
