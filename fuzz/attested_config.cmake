if(TARGET torgw_config)
  torgw_fuzzer(attested_config SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/attested_config_fuzz.cpp DEPS torgw_config)
endif()
