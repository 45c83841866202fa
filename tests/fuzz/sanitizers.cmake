# Included by the top-level CMakeLists.txt when STARLING_FUZZ is on, before the libraries are
# configured: everything compiled in this build is instrumented for libFuzzer's coverage and
# checked by AddressSanitizer and UndefinedBehaviorSanitizer. Only clang has libFuzzer.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "STARLING_FUZZ needs clang: CXX=clang++-14 cmake -DSTARLING_FUZZ=ON ...")
endif()

# Any undefined behaviour stops the run like a crash (the default only prints and goes on, and
# a printed warning is a finding nobody reads). Optimized as a release build, but with assert().
set(STARLING_SANITIZERS address,undefined)
add_compile_options(-fsanitize=${STARLING_SANITIZERS},fuzzer-no-link -fno-sanitize-recover=all
                    -fno-omit-frame-pointer)
add_link_options(-fsanitize=${STARLING_SANITIZERS})
set(CMAKE_CXX_FLAGS_RELWITHDEBINFO "-O2 -g")

# src/*/CMakeLists.txt declare their unit tests beside their libraries and add sources to them
# afterwards, so the targets must exist; here they stay out of `all` and out of ctest.
function(starling_unit_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} EXCLUDE_FROM_ALL ${T_SOURCES})
endfunction()
