torgw_fuzzer(firewall_endpoint SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/firewall_endpoint_fuzz.cpp DEPS torgw_firewall)
