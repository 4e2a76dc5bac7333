if(TARGET torgw_measure)
  torgw_executable(measure_bench
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/measure_bench.cpp
    DEPS torgw_measure nlohmann_json::nlohmann_json)
endif()
