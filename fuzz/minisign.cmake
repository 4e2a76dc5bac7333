if(TARGET torgw_release)
  torgw_fuzzer(minisign SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/minisign_fuzz.cpp DEPS torgw_release)
endif()
