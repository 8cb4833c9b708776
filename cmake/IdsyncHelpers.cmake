# Helpers that give every component the same shape: one library target with an
# idsync:: alias and a public include/ directory, and one test executable per
# test file registered with CTest under a label.

include(GoogleTest)

# idsync_add_library(NAME <name> SRCS <files...> [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
# Builds idsync_<name> from <dir>/src with <dir>/include public, aliased idsync::<name>.
function(idsync_add_library)
  cmake_parse_arguments(ARG "" "NAME" "SRCS;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(idsync_${ARG_NAME} STATIC ${ARG_SRCS})
  add_library(idsync::${ARG_NAME} ALIAS idsync_${ARG_NAME})
  target_include_directories(idsync_${ARG_NAME} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include)
  target_link_libraries(idsync_${ARG_NAME} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  target_compile_options(idsync_${ARG_NAME} PRIVATE ${IDSYNC_WARNINGS})
endfunction()

# idsync_add_test(NAME <name> SRCS <files...> DEPS <libs...> [LABEL unit|integration]
#                 [PROPERTIES <ctest properties...>] [WHOLE])
function(idsync_add_test)
  cmake_parse_arguments(ARG "WHOLE" "NAME;LABEL" "SRCS;DEPS;PROPERTIES" ${ARGN})
  if(NOT ARG_LABEL)
    set(ARG_LABEL unit)
  endif()
  add_executable(${ARG_NAME} ${ARG_SRCS})
  if(ARG_LABEL STREQUAL "integration" AND NOT IDSYNC_BUILD_INTEGRATION_TESTS)
    # Defined (so that the lines after it still apply) but not built by default.
    set_target_properties(${ARG_NAME} PROPERTIES EXCLUDE_FROM_ALL ON)
  endif()
  target_link_libraries(${ARG_NAME} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main)
  target_compile_options(${ARG_NAME} PRIVATE ${IDSYNC_WARNINGS})
  target_compile_definitions(${ARG_NAME} PRIVATE
    IDSYNC_TESTDATA_DIR="${PROJECT_SOURCE_DIR}/tests/testdata"
    IDSYNC_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  if(ARG_WHOLE)
    # One CTest test runs the whole binary: its tests share what it starts
    # once (a database server) instead of each starting their own.
    add_test(NAME ${ARG_NAME} COMMAND ${ARG_NAME})
    set_tests_properties(${ARG_NAME} PROPERTIES LABELS ${ARG_LABEL} ${ARG_PROPERTIES})
    return()
  endif()
  gtest_discover_tests(${ARG_NAME}
    DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS ${ARG_LABEL} ${ARG_PROPERTIES})
endfunction()
