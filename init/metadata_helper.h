// `torgw-init --metadata-helper`: the unprivileged half of the metadata fetch
// (docs/init.md "Privilege separation"). PID 1 re-executes its own binary
// (/proc/self/exe) with these arguments, as the user torgw-meta, with no capabilities
// and no_new_privs; the helper asks the metadata service over HTTP (config/metadata.h's
// fetcher, the only evhttp code in the image) and writes format_metadata_wire() to its
// stdout, a pipe PID 1 reads under a deadline.
//
//   torgw-init --metadata-helper --url http://169.254.169.254 --providers gce,hetzner
//              --timeout-ms 2000 --attempts 3 --backoff-ms 250
//
// Before it fetches anything it checks its own privileges and refuses to run (the
// report is `error metadata:helper_privileged <why>`) as uid or gid 0, with any
// capability in its effective, permitted, inheritable or ambient set, or without
// no_new_privs. Exit codes: 0 (a report was written, which may be an `error` line),
// 2 (bad arguments, or the pipe could not be written).
#pragma once

#include <string>
#include <vector>

namespace torgw::init {

inline constexpr const char* kMetadataHelperFlag = "--metadata-helper";

// args: everything after --metadata-helper.
int metadata_helper_main(const std::vector<std::string>& args);

}  // namespace torgw::init
