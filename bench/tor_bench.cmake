# tor_bench: supervision cost on a private Tor network, beside a bare HiddenServiceDir
# tor (needs the tests' tornet harness, so only with TORGW_TESTS).
if(TARGET torgw_supervisor AND TARGET torgw_tornet)
  torgw_executable(tor_bench
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/tor_bench.cpp
    DEPS torgw_supervisor torgw_tornet nlohmann_json::nlohmann_json)
endif()
