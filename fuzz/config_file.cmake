torgw_fuzzer(config_file SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/config_file_fuzz.cpp DEPS torgw_config torgw_serial)
