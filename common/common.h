// common/: what every module needs and nothing module-specific — the error type that
// crosses module borders, bounds-checked bytes, owned fds, secrets, process spawning.
// The first layer: it includes no other module. Its parts:
//   common/result.h  Result<T> / Status / Error with a stable dotted reason token
//   common/bytes.h   ByteReader for outside bytes; hex and base64
//   common/fd.h      UniqueFd
//   common/secret.h  SecretBytes (mlock'ed, zeroed on free)
//   common/spawn.h   fork + drop privileges + exec, with the failing step as an Error
//   common/reasons.h every reason token the module makes (docs/DEVELOPING.md)
//   common/event.h   RAII libevent owners (Timer, FdWatch, BufferEvent, post + Lifetime);
//                    its own library, torgw_common_event, so libevent stays out of the
//                    modules that do not run a loop: named here, not included
// Include the part you use; this header includes them all but event.h.
#pragma once

#include "common/bytes.h"
#include "common/fd.h"
#include "common/reasons.h"
#include "common/result.h"
#include "common/secret.h"
#include "common/spawn.h"
