# torgw-socks benchmark: bench/socks_bench.py drives torgw-socks-load (load generator and
# destination server) against direct, torgw-socks, haproxy and socat paths.
torgw_executable(torgw-socks-load
  SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/socks_load.cpp)

# A smoke run of the script (tiny durations) so it cannot rot: it checks that every path
# works and the table prints. It asserts nothing about speed.
if(TORGW_TESTS)
  add_test(NAME socks_bench_smoke
           COMMAND python3 ${CMAKE_CURRENT_SOURCE_DIR}/socks_bench.py --quick --bin-dir ${PROJECT_BINARY_DIR})
  set_tests_properties(socks_bench_smoke PROPERTIES LABELS "integration;slow;root" TIMEOUT 600
                       SKIP_RETURN_CODE 77)
endif()
