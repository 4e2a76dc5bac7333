# Helpers shared by every module. Keep them few and boring.

set(TORGW_WARNINGS -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wcast-align
    -Wformat=2 -Wimplicit-fallthrough -Wundef
    # Designated initializers that leave members defaulted are the point of them.
    -Wno-missing-field-initializers)
if(TORGW_WERROR)
  list(APPEND TORGW_WARNINGS -Werror)
endif()

if(TORGW_FUZZ)
  # Every library gets coverage instrumentation; only fuzz_* binaries link libFuzzer.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
elseif(TORGW_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)
  add_link_options(-fsanitize=address,undefined)
endif()

# Hardening for every binary we ship: these processes parse hostile bytes.
add_compile_options(-fstack-protector-strong -fstack-clash-protection -fcf-protection)
if(NOT TORGW_SANITIZE AND NOT TORGW_FUZZ AND NOT CMAKE_BUILD_TYPE STREQUAL "Debug")
  add_compile_definitions(_FORTIFY_SOURCE=3)
  add_compile_options(-U_FORTIFY_SOURCE)
endif()
add_link_options(-Wl,-z,relro,-z,now -Wl,-z,noexecstack)

# torgw_module(<name> SOURCES ... [DEPS ...])
# Creates static library torgw_<name>; include paths are rooted at the repo, so code
# says #include "socks/socks5.h".
function(torgw_module name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS" ${ARGN})
  add_library(torgw_${name} STATIC ${M_SOURCES})
  target_include_directories(torgw_${name} PUBLIC ${PROJECT_SOURCE_DIR})
  target_compile_options(torgw_${name} PRIVATE ${TORGW_WARNINGS})
  target_link_libraries(torgw_${name} PUBLIC ${M_DEPS})
endfunction()

# torgw_executable(<name> SOURCES ... [DEPS ...])
function(torgw_executable name)
  cmake_parse_arguments(M "" "" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${M_SOURCES})
  target_compile_options(${name} PRIVATE ${TORGW_WARNINGS})
  target_link_libraries(${name} PRIVATE ${M_DEPS})
endfunction()

# torgw_test(<name> SOURCES ... [DEPS ...] [LABELS ...] [TIMEOUT s] [NEEDS target...])
# NEEDS: executables the test runs (built before it, not linked).
# One Catch2 executable, registered as one CTest test; it exits 77 (CTest: Skipped) when
# a case called TORGW_SKIP and none failed (tests/support/skip.h). Labels: unit (fast, pure, run
# under ASan too), integration (real peers on loopback), slow (minutes), root (needs
# CAP_SYS_ADMIN: namespaces, mounts). The Catch2 main lives in tests/support.
function(torgw_test name)
  if(NOT TORGW_TESTS)
    return()
  endif()
  cmake_parse_arguments(T "" "TIMEOUT" "SOURCES;DEPS;LABELS;NEEDS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_compile_options(${name} PRIVATE ${TORGW_WARNINGS})
  target_link_libraries(${name} PRIVATE torgw_catch_main ${T_DEPS})
  if(T_NEEDS)
    add_dependencies(${name} ${T_NEEDS})
  endif()
  add_test(NAME ${name} COMMAND ${name})
  if(NOT T_LABELS)
    set(T_LABELS unit)
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  # 77: something skipped and nothing failed (tests/support/skip.h).
  set_tests_properties(${name} PROPERTIES LABELS "${T_LABELS}" TIMEOUT ${T_TIMEOUT}
    SKIP_RETURN_CODE 77 ENVIRONMENT "TORGW_SOURCE_DIR=${PROJECT_SOURCE_DIR};TORGW_BINARY_DIR=${PROJECT_BINARY_DIR};TORGW_SHARED_DIR=${PROJECT_SOURCE_DIR}/../shared")
endfunction()

# torgw_fuzzer(<name> SOURCE <file> DEPS ...)
# With TORGW_FUZZ (clang): a libFuzzer binary fuzz_<name>. Otherwise a replay binary
# that runs the same entry point over fuzz/corpus/<name>/ as a unit test, so every
# fuzz target compiles and its corpus stays a regression suite in every build.
function(torgw_fuzzer name)
  cmake_parse_arguments(F "" "SOURCE" "DEPS" ${ARGN})
  add_executable(fuzz_${name} ${F_SOURCE})
  target_link_libraries(fuzz_${name} PRIVATE ${F_DEPS})
  if(TORGW_FUZZ)
    target_compile_options(fuzz_${name} PRIVATE -fsanitize=fuzzer,address,undefined)
    target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer,address,undefined)
  else()
    target_sources(fuzz_${name} PRIVATE ${PROJECT_SOURCE_DIR}/fuzz/replay_main.cpp)
    if(TORGW_TESTS)
      add_test(NAME fuzz_replay_${name}
               COMMAND fuzz_${name} ${PROJECT_SOURCE_DIR}/fuzz/corpus/${name})
      set_tests_properties(fuzz_replay_${name} PROPERTIES LABELS "unit;fuzz" TIMEOUT 120)
    endif()
  endif()
endfunction()
