torgw_fuzzer(init_machine SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/init_machine_fuzz.cpp DEPS torgw_init)
