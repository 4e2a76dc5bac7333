if(TARGET torgw_snp)
  torgw_fuzzer(identity_key SOURCE ${CMAKE_CURRENT_LIST_DIR}/identity_key_fuzz.cpp DEPS torgw_snp torgw_onion)
endif()
