# Helpers: one function per target kind, so every target gets the same flags.
set(RHIP_WARNINGS -Wall -Wextra -Wshadow -Wno-unused-parameter)
if(RHIP_WERROR)
  list(APPEND RHIP_WARNINGS -Werror)
endif()
if(RHIP_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

# rhip_add_library(NAME SOURCES ... DEPS ...): a layer of the library.
function(rhip_add_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${CMAKE_SOURCE_DIR}/include PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_compile_options(${name} PRIVATE ${RHIP_WARNINGS})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

# rhip_add_test(NAME SOURCES ... DEPS ...): a GoogleTest binary; each TEST is one ctest case.
function(rhip_add_test name)
  if(NOT RHIP_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_compile_options(${name} PRIVATE ${RHIP_WARNINGS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60
    PROPERTIES ENVIRONMENT "RHIP_BIN=${CMAKE_BINARY_DIR}/rhip")
endfunction()

# rhip_add_benchmark(NAME SOURCES ... DEPS ...): a Google Benchmark binary (never part of ctest).
function(rhip_add_benchmark name)
  if(NOT RHIP_BUILD_BENCHMARKS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/src)
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} benchmark::benchmark)
endfunction()

# rhip_layer(NAME DIRS d1 d2 ... DEPS ... TEST_DEPS ...): one layer of the library
# made of every .cc in DIRS; `*_test.cc` files form the layer's test binary
# (NAME_test) and `*_benchmark.cc` files its micro-benchmark binary (NAME_benchmark).
# New files are picked up without editing CMake.
function(rhip_layer name)
  cmake_parse_arguments(ARG "" "" "DIRS;DEPS;EXTRA_SOURCES;TEST_DEPS" ${ARGN})
  set(srcs "")
  set(tests "")
  set(benches "")
  foreach(d ${ARG_DIRS})
    file(GLOB found CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/${d}/*.cc)
    foreach(f ${found})
      if(f MATCHES "_test\\.cc$")
        list(APPEND tests ${f})
      elseif(f MATCHES "_benchmark\\.cc$")
        list(APPEND benches ${f})
      elseif(NOT f MATCHES "_fuzz\\.cc$")
        list(APPEND srcs ${f})
      endif()
    endforeach()
  endforeach()
  rhip_add_library(rhip_${name} SOURCES ${srcs} ${ARG_EXTRA_SOURCES} DEPS ${ARG_DEPS})
  if(tests)
    rhip_add_test(rhip_${name}_test SOURCES ${tests} DEPS rhip_${name} ${ARG_TEST_DEPS})
  endif()
  if(benches)
    rhip_add_benchmark(rhip_${name}_benchmark SOURCES ${benches} DEPS rhip_${name} ${ARG_TEST_DEPS})
  endif()
endfunction()

# rhip_add_fuzz(NAME SOURCES ... DEPS ...): a fuzz target (fuzz/NAME_fuzz.cc,
# LLVMFuzzerTestOneInput). With RHIP_FUZZ (clang): a libFuzzer binary
# rhip_fuzz_NAME for the long runs (`make fuzz`). In the normal build with
# tests: a replay binary over the committed corpus fuzz/corpus/NAME/,
# registered with ctest as fuzz_replay.NAME (the fuzz smoke of `make test`).
function(rhip_add_fuzz name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPS" ${ARGN})
  if(RHIP_FUZZ)
    add_executable(rhip_fuzz_${name} ${ARG_SOURCES})
    target_link_options(rhip_fuzz_${name} PRIVATE -fsanitize=fuzzer)
    set(exe rhip_fuzz_${name})
    add_dependencies(rhip_fuzz_all ${exe})
  elseif(RHIP_BUILD_TESTS)
    add_executable(rhip_fuzz_replay_${name} ${ARG_SOURCES} ${CMAKE_SOURCE_DIR}/fuzz/replay_main.cc)
    set(exe rhip_fuzz_replay_${name})
    add_test(NAME fuzz_replay.${name} COMMAND ${exe} ${CMAKE_SOURCE_DIR}/fuzz/corpus/${name})
  else()
    return()
  endif()
  target_include_directories(${exe} PRIVATE ${CMAKE_SOURCE_DIR}/src ${CMAKE_SOURCE_DIR}/fuzz)
  target_compile_options(${exe} PRIVATE ${RHIP_WARNINGS})
  target_link_libraries(${exe} PRIVATE ${ARG_DEPS})
  set_target_properties(${exe} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/fuzz)
endfunction()
