torgw_fuzzer(hetzner_userdata SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/hetzner_userdata_fuzz.cpp DEPS torgw_config torgw_serial)
