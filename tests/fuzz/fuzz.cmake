# fuzz.cmake - the fuzz targets, tests/fuzz/fuzz_NAME.cpp (included by tests/CMakeLists.txt).
#
# In every build (g++, clang++, MinGW, the sanitizer builds):
#   fuzz-replay-NAME    the target with a plain main (replay_main.cpp), and the
#   fuzz-corpus:NAME    CTest test that runs it once on every file in
#                       tests/fuzz/corpus/NAME/ (seeds, and every input that
#                       ever found a bug: crash-*, hang-*)
# With -DFUZZ=ON (clang++ only):
#   fuzz-NAME           the target with libFuzzer's main, which makes up new
#                       inputs; tests/fuzz/run.sh builds and runs these
# NAME is the file's name without "fuzz_", with hyphens: fuzz_response_reader.cpp
# is response-reader.
option(FUZZ "build the libFuzzer targets (clang)" OFF)
if(FUZZ AND NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "FUZZ=ON needs clang++ (libFuzzer comes with clang), not "
                      "${CMAKE_CXX_COMPILER_ID} (${CMAKE_CXX_COMPILER}): configure a new build "
                      "folder with -DCMAKE_CXX_COMPILER=clang++, or run tests/fuzz/run.sh")
endif()
if(FUZZ AND NOT CMAKE_CXX_FLAGS MATCHES "fuzzer-no-link")
  message(WARNING "FUZZ=ON without -fsanitize=fuzzer-no-link in CMAKE_CXX_FLAGS: common/ is not "
                  "instrumented, so libFuzzer cannot tell which of its branches an input reached "
                  "(tests/fuzz/run.sh sets it)")
endif()

file(GLOB fuzz_sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_LIST_DIR}/fuzz_*.cpp)
foreach(source ${fuzz_sources})
  get_filename_component(name ${source} NAME_WE)
  string(REGEX REPLACE "^fuzz_" "" name ${name})
  string(REPLACE "_" "-" name ${name})

  add_executable(fuzz-replay-${name} ${source} ${CMAKE_CURRENT_LIST_DIR}/replay_main.cpp)
  target_link_libraries(fuzz-replay-${name} PRIVATE common)
  # A path relative to the corpus folder: the same under Wine.
  add_test(NAME fuzz-corpus:${name} COMMAND fuzz-replay-${name} ${name}
           WORKING_DIRECTORY ${CMAKE_CURRENT_LIST_DIR}/corpus)
  set_tests_properties(fuzz-corpus:${name} PROPERTIES TIMEOUT 60)

  if(FUZZ)
    add_executable(fuzz-${name} ${source})
    target_link_libraries(fuzz-${name} PRIVATE common)
    target_compile_options(fuzz-${name} PRIVATE -fsanitize=fuzzer)
    target_link_options(fuzz-${name} PRIVATE -fsanitize=fuzzer)
  endif()
endforeach()
