if(TARGET torgw_serial)
  torgw_fuzzer(serial SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/serial_fuzz.cpp DEPS torgw_serial)
endif()
