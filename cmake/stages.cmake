# gg_stage(NAME [DEPS target...] [PCH header...]): a static library gg_<NAME> built from
# src/<NAME>/*.cpp, with src/ on the include path so headers are included as "<stage>/<stage>.h".
function(gg_stage name)
  cmake_parse_arguments(ARG "" "" "DEPS;PCH" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${name}/*.cpp)
  if(NOT sources)  # a stage not yet written: header-only until it has sources
    add_library(gg_${name} INTERFACE)
    target_include_directories(gg_${name} INTERFACE ${PROJECT_SOURCE_DIR}/src)
    target_link_libraries(gg_${name} INTERFACE ${ARG_DEPS})
    return()
  endif()
  add_library(gg_${name} STATIC ${sources})
  target_include_directories(gg_${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(gg_${name} PUBLIC ${ARG_DEPS})
  if(ARG_PCH)
    target_precompile_headers(gg_${name} PRIVATE ${ARG_PCH})
  endif()
endfunction()

# gg_test(STAGE DEPS target...): one GoogleTest binary per stage from tests/<STAGE>/*_test.cpp.
# Tests find ../shared and the built executable through tests/testing/testing.h.
function(gg_test stage)
  cmake_parse_arguments(ARG "" "" "DEPS;PCH" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/tests/${stage}/*_test.cpp)
  if(NOT sources)
    return()
  endif()
  add_executable(test_${stage} ${sources})
  target_link_libraries(test_${stage} PRIVATE ${ARG_DEPS} gg_testing GTest::gtest GTest::gtest_main)
  if(ARG_PCH)
    target_precompile_headers(test_${stage} PRIVATE ${ARG_PCH})
  endif()
  # A test that hangs fails after 25 minutes with its output, instead of holding CI until its
  # own limit (the slowest, the shuffled-label audit, takes 4-12 minutes on 2 loaded cores).
  gtest_discover_tests(test_${stage} DISCOVERY_TIMEOUT 120 PROPERTIES LABELS ${stage}
                       TIMEOUT 1500)
endfunction()
