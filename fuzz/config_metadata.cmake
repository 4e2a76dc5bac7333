torgw_fuzzer(config_metadata SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/config_metadata_fuzz.cpp DEPS torgw_config torgw_serial)
