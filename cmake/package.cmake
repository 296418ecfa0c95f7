# The Debian package: `cpack -G DEB` in the build directory writes
# aisio_<version>_amd64.deb with everything `cmake --install` installs (every install
# COMPONENT, the Python package's included). Depends: what dpkg-shlibdeps finds for the
# binaries and libaisio.so, plus the -dev packages of the libraries the public headers
# include (the CMake package's find_dependency and aisio.pc's Requires need them), plus
# what other parts of the build add to the AISIO_DEB_DEPENDS global property.
# No maintainer scripts enable homid: its unit is installed for the administrator.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME aisio)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(AISIO_DEB_MAINTAINER "aisio maintainers <maintainers@invalid>" CACHE STRING "The .deb's Maintainer field")
set(CPACK_PACKAGE_CONTACT "${AISIO_DEB_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "user-space NVMe stack: libaisio, the aisio tool and the homid daemon")
set(CPACK_PACKAGE_DESCRIPTION "libaisio (user-space NVMe driver, software NVMe controller, extents,
homid client, file reads) with its C++20 headers, CMake package and pkg-config file;
the aisio command line; homid, the HOMI control-plane daemon, with a systemd unit
that is installed but not enabled.")
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # aisio_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SECTION libs)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# Install with DESTDIR and the real prefix (/usr), so what is written at install time
# (aisio.pc, homid.service, cmake/library.cmake) names /usr, not the staging directory.
set(CPACK_SET_DESTDIR ON)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
get_property(aisio_deb_extra GLOBAL PROPERTY AISIO_DEB_DEPENDS)
set(aisio_deb_depends libfmt-dev nlohmann-json3-dev ${aisio_deb_extra})
list(REMOVE_DUPLICATES aisio_deb_depends)
string(JOIN ", " CPACK_DEBIAN_PACKAGE_DEPENDS ${aisio_deb_depends})
set(CPACK_PACKAGE_DIRECTORY ${CMAKE_BINARY_DIR}/package)
include(CPack)
