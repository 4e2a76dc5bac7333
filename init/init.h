// init/: torgw-init, PID 1 of the appliance (or, with --dev, the same boot as a normal
// process) — the event loop and child supervision every stage runs on, the machine's
// duties, the boot sequence of stages and its shutdown. The last library layer: it may
// include every earlier module. Its parts:
//   init/loop.h             the event loop (signalfd, timers, fd watches)
//   init/child.h            spawning, reaping, supervised children
//     (loop.h and child.h are the library torgw_init_runtime; the rest is torgw_init)
//   init/machine.h          mounts, modules, network, clock, RNG, power button, reboot
//   init/screen.h           the consoles and the summary block on tty0
//   init/lifecycle.h        PID 1's lifecycle: states, events, the transition table
//   init/boot.h             the stages, BootContext, the boot and shutdown sequence
//   init/metadata_helper.h  `torgw-init --metadata-helper`, the unprivileged fetcher
//   init/reasons.h          every reason token the module makes (docs/DEVELOPING.md)
// The executable is init/main.cpp; operator documentation is docs/init.md.
#pragma once

#include "init/boot.h"
#include "init/child.h"
#include "init/lifecycle.h"
#include "init/loop.h"
#include "init/machine.h"
#include "init/metadata_helper.h"
#include "init/reasons.h"
#include "init/screen.h"
