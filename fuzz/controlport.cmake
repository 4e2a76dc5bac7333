# The control-port reply stream and every reply/event parser (tor's bytes are outside input).
if(TARGET torgw_controlport)
  torgw_fuzzer(controlport SOURCE ${CMAKE_CURRENT_LIST_DIR}/controlport_fuzz.cpp DEPS torgw_controlport)
endif()
