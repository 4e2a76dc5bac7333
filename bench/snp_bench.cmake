if(TARGET torgw_snp)
  torgw_executable(snp_bench
    SOURCES ${CMAKE_CURRENT_LIST_DIR}/snp_bench.cpp
    DEPS torgw_snp torgw_snp_simulated torgw_onion)
endif()
