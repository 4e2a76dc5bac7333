# torgw-socks: the tls config values (pins, PEM, SNI, tls:// endpoints) and config text
# that uses them (see socks_tls_fuzz.cpp).
if(TARGET torgw_socks)
  torgw_fuzzer(socks_tls SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/socks_tls_fuzz.cpp DEPS torgw_socks)
endif()
