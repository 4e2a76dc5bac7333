torgw_fuzzer(config_cmdline SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/config_cmdline_fuzz.cpp DEPS torgw_config torgw_serial)
