# Installation extras and the Debian package (cpack -G DEB).
#
# Included at the end of the top-level CMakeLists.txt, after every component
# has declared its install rules. It adds the manual pages and documentation to
# the install and configures CPack:
#
#   cmake --build build && (cd build && cpack -G DEB)   # -> build/idsync_<version>-1_<arch>.deb
#   apt install ./build/idsync_*.deb
#
# The package holds the binaries, the systemd units, the sysusers.d and
# tmpfiles.d snippets, an example configuration as the conffile
# /etc/idsync/idsync.yaml, the manual pages and the documentation. Its
# maintainer scripts (systemd/deb/) create the idsync user and directories and
# reload systemd; they never enable or start a service.

if(NOT TARGET idsync_man)
  add_subdirectory(${PROJECT_SOURCE_DIR}/man ${PROJECT_BINARY_DIR}/man)
endif()

install(FILES
          ${PROJECT_SOURCE_DIR}/README.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/
        DESTINATION ${CMAKE_INSTALL_DOCDIR}
        FILES_MATCHING PATTERN "*.md" PATTERN "*.yml")

set(IDSYNC_PACKAGE_MAINTAINER "idsync maintainers <idsync@localhost>" CACHE STRING
    "Maintainer field of the Debian package")

set(CPACK_PACKAGE_NAME idsync)
set(CPACK_PACKAGE_VENDOR "idsync")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT ${IDSYNC_PACKAGE_MAINTAINER})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "keeps a SaaS account's users in step with the company directory")
set(CPACK_PACKAGE_DESCRIPTION
    "idsync reads who is in which group from LDAP (OpenLDAP, Active Directory) and from SCIM 2.0 pushes (Okta, Microsoft Entra ID), turns group membership into account roles and permissions through YAML rules, and applies the difference to the account, with a plan to review first, safety limits and a hash-chained audit log. This package holds the idsyncd daemon, the idsync command line tool and their systemd units.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_INSTALL_PREFIX /usr)
# Install into the staging tree through DESTDIR, so that absolute destinations
# (/etc/idsync) land in the package, never on the build machine.
set(CPACK_SET_DESTDIR ON)
set(CPACK_STRIP_FILES ON)
set(CPACK_GENERATOR DEB)

set(CPACK_DEBIAN_PACKAGE_NAME idsync)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER ${IDSYNC_PACKAGE_MAINTAINER})
# Library dependencies are computed by dpkg-shlibdeps; systemd provides
# systemd-sysusers and systemd-tmpfiles for the maintainer scripts.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd (>= 247)")
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "sqlite3, ldap-utils")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${PROJECT_SOURCE_DIR}/systemd/deb/postinst
    ${PROJECT_SOURCE_DIR}/systemd/deb/prerm
    ${PROJECT_SOURCE_DIR}/systemd/deb/postrm
    ${PROJECT_SOURCE_DIR}/systemd/deb/conffiles)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

include(CPack)
