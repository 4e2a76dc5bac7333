if(TARGET torgw_onion)
  torgw_fuzzer(onion SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/onion_fuzz.cpp DEPS torgw_onion)
endif()
