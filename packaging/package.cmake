#  packaging/package.cmake — install rules and the Debian package (CPack),
#  included from the top CMakeLists.txt. `scripts/package` builds the .deb;
#  `cmake --build BUILD --target package` does the same by hand.
#
#  The package puts:
#    /usr/bin/fedq-node, /usr/bin/fedq
#    /lib/systemd/system/fedq.service     (packaging/fedq.service)
#    /etc/fedq/fedq.yaml                  (packaging/fedq.yaml, a conffile)
#    /usr/share/doc/fedq/                 README, docs, example sites
#  and its postinst creates the `fedq` system user and /var/lib/fedq.
#
#  /etc and /lib/systemd are absolute destinations: `cmake --install`
#  without DESTDIR writes there, so install by hand only with DESTDIR set.

set (FEDQ_SYSCONF_DIR "/etc/fedq" CACHE PATH
     "Where the package installs fedq.yaml (absolute)")
set (FEDQ_SYSTEMD_UNIT_DIR "/lib/systemd/system" CACHE PATH
     "Where the package installs fedq.service (absolute; Debian 12: /lib)")
set (FEDQ_PACKAGE_MAINTAINER "fedq maintainers <fedq@localhost>" CACHE STRING
     "Maintainer field of the Debian package")

install (TARGETS fedq-node fedq RUNTIME DESTINATION bin)
install (FILES ${CMAKE_CURRENT_SOURCE_DIR}/packaging/fedq.service
         DESTINATION ${FEDQ_SYSTEMD_UNIT_DIR})
install (FILES ${CMAKE_CURRENT_SOURCE_DIR}/packaging/fedq.yaml
         DESTINATION ${FEDQ_SYSCONF_DIR})
install (FILES ${CMAKE_CURRENT_SOURCE_DIR}/README.md
         DESTINATION share/doc/fedq)
file (GLOB FEDQ_DOC_PAGES CONFIGURE_DEPENDS
      ${CMAKE_CURRENT_SOURCE_DIR}/docs/*.md)
install (FILES ${FEDQ_DOC_PAGES} DESTINATION share/doc/fedq)
file (GLOB FEDQ_EXAMPLE_SITES CONFIGURE_DEPENDS
      ${CMAKE_CURRENT_SOURCE_DIR}/config/examples/*.yaml)
install (FILES ${FEDQ_EXAMPLE_SITES} DESTINATION share/doc/fedq/examples)

#  -- CPack: one Debian package, fedq_VERSION_ARCH.deb ----------------------
set (CPACK_GENERATOR "DEB")
set (CPACK_PACKAGE_NAME "fedq")
set (CPACK_PACKAGE_VENDOR "fedq")
set (CPACK_PACKAGE_CONTACT "${FEDQ_PACKAGE_MAINTAINER}")
set (CPACK_PACKAGE_DESCRIPTION_SUMMARY
     "federated message broker: shovels and federated queues over ZeroMQ")
set (CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
#  Stage with DESTDIR so that the absolute destinations above land in the
#  package and never on the build machine.
set (CPACK_SET_DESTDIR ON)
set (CPACK_INSTALL_PREFIX "/usr")
set (CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set (CPACK_STRIP_FILES ON)

set (CPACK_DEBIAN_PACKAGE_NAME "fedq")
set (CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set (CPACK_DEBIAN_PACKAGE_MAINTAINER "${FEDQ_PACKAGE_MAINTAINER}")
set (CPACK_DEBIAN_PACKAGE_SECTION "net")
set (CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
#  The long description: CPack puts the summary above it as the synopsis and
#  indents every line by one space, as the control file wants.
set (CPACK_DEBIAN_PACKAGE_DESCRIPTION
     "fedq-node is a message broker for one site (exchanges, queues, a durable
log) that links to brokers at other sites: shovel links forward a queue
to another node confirmed and exactly once; federated queues keep one
queue on several nodes, multi-master. The fedq command publishes,
consumes and shows replication lag. Runs as the systemd service fedq
with /etc/fedq/fedq.yaml.")
#  Runtime libraries: dpkg-shlibdeps reads them off the binaries, with
#  versions (Debian 12: libc6, libzmq5, libczmq4, libyaml-0-2, libjansson4,
#  libmicrohttpd12, libssl3 for libcrypto.so.3). msgpack-c is used through
#  its inline functions only: nothing links libmsgpackc.so.2, so libmsgpackc2
#  is not a dependency until something does. adduser is for the postinst.
#  Without dpkg-shlibdeps (dpkg-dev), the list is written out.
find_program (FEDQ_DPKG_SHLIBDEPS dpkg-shlibdeps)
if (FEDQ_DPKG_SHLIBDEPS)
    set (CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
    set (CPACK_DEBIAN_PACKAGE_DEPENDS "adduser")
else ()
    set (CPACK_DEBIAN_PACKAGE_DEPENDS
         "adduser, libc6, libzmq5, libczmq4, libyaml-0-2, libjansson4, libmicrohttpd12, libssl3")
endif ()
set (CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
     "${CMAKE_CURRENT_SOURCE_DIR}/packaging/conffiles"
     "${CMAKE_CURRENT_SOURCE_DIR}/packaging/postinst"
     "${CMAKE_CURRENT_SOURCE_DIR}/packaging/prerm"
     "${CMAKE_CURRENT_SOURCE_DIR}/packaging/postrm")
set (CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

#  `package_source` must not sweep up build trees, data or VM state.
set (CPACK_SOURCE_GENERATOR "TGZ")
set (CPACK_SOURCE_IGNORE_FILES "/\\\\.git/" "/build[^/]*/" "/data/"
     "/\\\\.vagrant/" "__pycache__")

include (CPack)
