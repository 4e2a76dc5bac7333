# Install rules (docs/cli.md "Install"). Components:
#   operator  torgw, its man pages, AMD's SEV-SNP certificates as the default trust
#             directory (share/torgw/snp-trust): what scripts/package puts in the .deb
#   image     torgw-init and torgw-socks, for those who build VM images elsewhere
include(GNUInstallDirs)

# AMD's certificates come from a directory outside the repository (the repository holds
# only their pins, cli/trust/amd-roots.sha256): packagers fetch them from AMD's KDS;
# here the default is the shared test vectors beside the worktree when present.
set(_trust_default "")
if(EXISTS ${PROJECT_SOURCE_DIR}/../shared/vectors/snp/trust/milan_ark.pem)
  get_filename_component(_trust_default ${PROJECT_SOURCE_DIR}/../shared/vectors/snp/trust ABSOLUTE)
endif()
set(TORGW_AMD_TRUST_DIR "${_trust_default}" CACHE PATH
    "Directory with AMD's {milan,genoa,turin}_{ark,ask,asvk}.pem; each must match cli/trust/amd-roots.sha256")

set(_trust_out ${PROJECT_BINARY_DIR}/snp-trust)
set(_trust_pins ${PROJECT_SOURCE_DIR}/cli/trust/amd-roots.sha256)
if(TORGW_AMD_TRUST_DIR)
  set(_trust_files)
  foreach(p milan genoa turin)
    foreach(k ark ask asvk)
      list(APPEND _trust_files ${_trust_out}/${p}_${k}.pem)
    endforeach()
  endforeach()
  add_custom_command(OUTPUT ${_trust_files}
    COMMAND ${PROJECT_SOURCE_DIR}/cli/trust/check-trust ${_trust_pins} ${TORGW_AMD_TRUST_DIR} ${_trust_out}
    DEPENDS ${_trust_pins} ${PROJECT_SOURCE_DIR}/cli/trust/check-trust
    COMMENT "AMD SEV-SNP certificates: checking them against their pins")
  add_custom_target(torgw_trust DEPENDS ${_trust_files})
  install(FILES ${_trust_files} DESTINATION ${CMAKE_INSTALL_DATADIR}/torgw/snp-trust COMPONENT operator)
else()
  add_custom_target(torgw_trust
    COMMAND ${CMAKE_COMMAND} -E echo "torgw_trust: set TORGW_AMD_TRUST_DIR to AMD's certificates (docs/cli.md Install)"
    COMMAND false)
  install(CODE "message(FATAL_ERROR \"no AMD certificates: configure with -DTORGW_AMD_TRUST_DIR=DIR (docs/cli.md Install)\")"
          COMPONENT operator)
endif()

# Man pages from --help (cli/man/gen-man runs help2man on every subcommand).
if(NOT DEFINED ENV{SOURCE_DATE_EPOCH})
  execute_process(COMMAND git -C ${PROJECT_SOURCE_DIR} log -1 --format=%ct
                  OUTPUT_VARIABLE _sde OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
else()
  set(_sde $ENV{SOURCE_DATE_EPOCH})
endif()
if(NOT _sde)
  set(_sde 0)
endif()
set(_man_out ${PROJECT_BINARY_DIR}/man1)
add_custom_target(torgw_man
  COMMAND ${CMAKE_COMMAND} -E rm -rf ${_man_out}
  COMMAND ${CMAKE_COMMAND} -E env SOURCE_DATE_EPOCH=${_sde}
          ${PROJECT_SOURCE_DIR}/cli/man/gen-man $<TARGET_FILE:torgw> ${PROJECT_VERSION} ${_man_out}
  DEPENDS torgw ${PROJECT_SOURCE_DIR}/cli/man/gen-man
  COMMENT "man pages from torgw --help")

install(TARGETS torgw RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT operator)
install(DIRECTORY ${_man_out}/ DESTINATION ${CMAKE_INSTALL_MANDIR}/man1 COMPONENT operator
        FILES_MATCHING PATTERN "*.1.gz")
foreach(t torgw-init torgw-socks)
  if(TARGET ${t})
    install(TARGETS ${t} RUNTIME DESTINATION ${CMAKE_INSTALL_SBINDIR} COMPONENT image)
  endif()
endforeach()
