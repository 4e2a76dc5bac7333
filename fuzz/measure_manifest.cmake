if(TARGET torgw_measure)
  torgw_fuzzer(measure_manifest SOURCE ${CMAKE_CURRENT_LIST_DIR}/measure_manifest_fuzz.cpp DEPS torgw_measure)
endif()
