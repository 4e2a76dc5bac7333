if(TARGET torgw_measure)
  torgw_fuzzer(measure_ovmf SOURCE ${CMAKE_CURRENT_LIST_DIR}/measure_ovmf_fuzz.cpp DEPS torgw_measure)
endif()
