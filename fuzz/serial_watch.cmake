if(TARGET torgw_serial)
  torgw_fuzzer(serial_watch SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/serial_watch_fuzz.cpp DEPS torgw_serial)
endif()
