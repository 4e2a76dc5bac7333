# torgw-socks: SOCKS5 parsers, sessions, policy and config text (see socks5_fuzz.cpp).
if(TARGET torgw_socks)
  torgw_fuzzer(socks5 SOURCE ${CMAKE_CURRENT_SOURCE_DIR}/socks5_fuzz.cpp DEPS torgw_socks)
endif()
