# tor_bench: supervision cost on a private Tor network, beside a bare HiddenServiceDir
# tor, and the whole torgw-init --dev before its tor runs (needs the tests' tornet
# harness, so only with TORGW_TESTS; runs the torgw-init and torgw-socks of this build).
if(TARGET torgw_supervisor AND TARGET torgw_tornet)
  torgw_executable(tor_bench
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/tor_bench.cpp
    DEPS torgw_supervisor torgw_tornet nlohmann_json::nlohmann_json)
  add_dependencies(tor_bench torgw-init torgw-socks)
  target_compile_definitions(tor_bench PRIVATE TORGW_INIT_BINARY="$<TARGET_FILE:torgw-init>"
                                               TORGW_SOCKS_BINARY="$<TARGET_FILE:torgw-socks>")
endif()
