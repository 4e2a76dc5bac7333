if(TARGET torgw_snp)
  torgw_fuzzer(snp_identity SOURCE ${CMAKE_CURRENT_LIST_DIR}/snp_identity_fuzz.cpp DEPS torgw_snp)
endif()
