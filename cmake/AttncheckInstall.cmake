# `cmake --install build --prefix P`: the attncheck command, the library a
# user needs to judge a case (libattncheck.a: the case model and data
# generation, the oracle, the kernels' CPU models and host API, the one-case
# check, verdict and backend registry), its public headers under
# P/include/attncheck/, a pkg-config file, a CMake package
# (find_package(attncheck) -> attncheck::attncheck), the man page and the
# documents a user reads (docs/CONTRACT.md, docs/VERDICT.md, LICENSE).
# ctest install_consumer builds tests/consumer/ against such a prefix.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# One archive from the four layers' objects, so a user links one -lattncheck
# and no internal archive order. (The target cannot be called `attncheck`:
# the command line has that name.)
add_library(attncheck_lib STATIC
  $<TARGET_OBJECTS:ac_common> $<TARGET_OBJECTS:ac_oracle>
  $<TARGET_OBJECTS:ac_kernels> $<TARGET_OBJECTS:ac_harness>)
set_target_properties(attncheck_lib PROPERTIES OUTPUT_NAME attncheck LINKER_LANGUAGE C)

# The public headers: what ac_check.h, ac_sweep.h, ac_family.h and the
# kernels' host API include, transitively. Not oracle_internal.h (MPFR
# types; the oracle's own business).
# The kernels' <family>.h are their C host APIs (no CUDA header needed).
file(GLOB AC_PUBLIC_HEADERS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/common/*.h ${CMAKE_SOURCE_DIR}/kernels/*.h)
list(APPEND AC_PUBLIC_HEADERS
  ${CMAKE_SOURCE_DIR}/common/ac_families.def
  ${CMAKE_SOURCE_DIR}/oracle/oracle.h)
file(GLOB AC_HARNESS_HEADERS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/harness/*.h)
# Loading outside kernels (--kernel LIB.so | py:MODULE:ADAPTER) is the command
# line's business (ac_plugin, with cJSON): not in the library.
list(REMOVE_ITEM AC_HARNESS_HEADERS ${CMAKE_SOURCE_DIR}/harness/ac_plugin_load.h ${CMAKE_SOURCE_DIR}/harness/ac_pybridge.h)
list(APPEND AC_PUBLIC_HEADERS ${AC_HARNESS_HEADERS})

install(TARGETS attncheck RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS attncheck_lib ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES ${AC_PUBLIC_HEADERS} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/attncheck)
install(FILES ${CMAKE_SOURCE_DIR}/docs/attncheck.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(FILES ${CMAKE_SOURCE_DIR}/LICENSE ${CMAKE_SOURCE_DIR}/docs/CONTRACT.md ${CMAKE_SOURCE_DIR}/docs/VERDICT.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR})

# What a program linking libattncheck.a needs besides it. The archive is
# static only, so these go on every link line (pkg-config's Libs, the
# imported target's interface), not only on --static ones.
set(AC_PC_LIBS "-lmpfr -lgmp -lpng16 -lz -lpthread -lm")
set(AC_CONFIG_CUDA OFF)
if(AC_HAVE_CUDA)
  # The kernels' objects call the CUDA runtime (static, as the binaries are).
  set(AC_CONFIG_CUDA ON)
  string(APPEND AC_PC_LIBS " -L${CUDAToolkit_LIBRARY_DIR} -lcudart_static -ldl -lrt -lstdc++")
endif()
# Relocatable: the prefix is found from the .pc file's own folder, so
# `cmake --install --prefix P` (chosen after configure) gives a right file.
file(RELATIVE_PATH AC_PC_TO_PREFIX /root/${CMAKE_INSTALL_LIBDIR}/pkgconfig /root)
set(AC_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
set(AC_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(AC_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(AC_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/attncheck.pc.in ${CMAKE_BINARY_DIR}/attncheck.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/attncheck.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

set(AC_CONFIG_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/attncheck)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/attncheckConfig.cmake.in
  ${CMAKE_BINARY_DIR}/attncheckConfig.cmake INSTALL_DESTINATION ${AC_CONFIG_DIR}
  PATH_VARS CMAKE_INSTALL_INCLUDEDIR CMAKE_INSTALL_LIBDIR)
write_basic_package_version_file(${CMAKE_BINARY_DIR}/attncheckConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/attncheckConfig.cmake ${CMAKE_BINARY_DIR}/attncheckConfigVersion.cmake
        DESTINATION ${AC_CONFIG_DIR})

# The install seen from outside: a temporary prefix, then tests/consumer/
# built against it with pkg-config and with find_package, both run.
add_test(NAME install_consumer
         COMMAND sh ${CMAKE_SOURCE_DIR}/tests/consumer/run.sh ${CMAKE_COMMAND} ${CMAKE_BINARY_DIR}
                 ${CMAKE_SOURCE_DIR})
set_tests_properties(install_consumer PROPERTIES LABELS unit TIMEOUT 600)
