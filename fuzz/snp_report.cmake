if(TARGET torgw_snp)
  torgw_fuzzer(snp_report SOURCE ${CMAKE_CURRENT_LIST_DIR}/snp_report_fuzz.cpp DEPS torgw_snp)
  torgw_fuzzer(snp_report_log SOURCE ${CMAKE_CURRENT_LIST_DIR}/snp_report_log_fuzz.cpp DEPS torgw_snp)
endif()
