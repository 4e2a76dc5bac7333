if(TARGET torgw_snp)
  torgw_fuzzer(snp_cert_table SOURCE ${CMAKE_CURRENT_LIST_DIR}/snp_cert_table_fuzz.cpp DEPS torgw_snp)
endif()
