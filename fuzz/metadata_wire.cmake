torgw_fuzzer(metadata_wire SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/metadata_wire_fuzz.cpp DEPS torgw_config)
