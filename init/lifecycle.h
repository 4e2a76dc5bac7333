// PID 1's lifecycle (and torgw-init --dev's) as one explicit state machine: a pure
// transition function, state x event -> state + effects. init/boot.cpp feeds it the
// events and carries out the effects; nothing else decides what happens next.
//
// States: Booting (stages start one after another), Running (INIT_DONE printed),
// Stopping (stages stopped in reverse, then the children), FatalDelay (PID 1 after a
// FATAL: services stopped, waiting fatal_delay before fatal_action), Final (the
// machine powers off / reboots / halts, or --dev exits). Stopping carries why it
// began (a request or a FATAL) and whether a FATAL was seen, so it has three rows.
//
// Events (columns):
//   stage done  a stage's start() finished (also the kick that starts the first one)
//   boot done   no stage left and PID 1 dropped its capabilities
//   stage fail  a stage's start() failed, or dropping the capabilities did
//   TERM        SIGTERM, SIGPWR or the ACPI power button: power off
//   INT         SIGINT: Ctrl-Alt-Del in PID 1 (reboot), Ctrl-C in --dev (power off)
//   gave up     a child gave up restarting (CHILD restart limit) or a running
//               service reported FATAL (tor's supervisor)
//   stopped     every started stage and every child has stopped
//   timer       the fatal_delay timer fired
// A "second request" is a TERM or INT column in a Stopping, FatalDelay or Final row:
// it is ignored, except during the FATAL delay, where it ends the wait at once with
// its own action.
//
// Effects: next = start the next stage (or, with none left, drop capabilities and
// report boot done / stage fail); up = PID1_CAPABILITIES + INIT_DONE; shut = SHUTDOWN
// marker; FATAL = FATAL marker (unless the service printed it), exit code 1; stop =
// stop stages in reverse, then children (-> stopped); delay = start the fatal_delay
// timer; cancel = cancel it; end(req) = the final action with the requested action;
// end(fatal) = the final action with fatal_action. "-" = ignored, nothing happens.
//
//                  | stage done | boot done | stage fail  | TERM        | INT         | gave up     | stopped | timer
// -----------------+------------+-----------+-------------+-------------+-------------+-------------+------------------+------------
// Booting          | next       | Running:  | Stopping/F: | Stopping/R: | Stopping/R: | Stopping/F: | - | -
//                  |            | up        | FATAL, stop | shut, stop  | shut, stop  | FATAL, stop | |
// Running          | -          | -         | -           | Stopping/R: | Stopping/R: | Stopping/F: | - | -
//                  |            |           |             | shut, stop  | shut, stop  | FATAL, stop | |
// Stopping/R       | -          | -         | -           | -           | -           | Stopping/RF:| Final: end(req)
// | -
//  (requested)     |            |           |             |             |             | FATAL       | |
// Stopping/RF      | -          | -         | -           | -           | -           | -           | Final: end(req)
// | -
//  (req. + FATAL)  |            |           |             |             |             |             | |
// Stopping/F       | -          | -         | -           | -           | -           | -           | PID 1:
// FatalDelay| -
//  (after FATAL)   |            |           |             |             |             |             | : delay; --dev: |
//                  |            |           |             |             |             |             | Final: end(req) |
// FatalDelay       | -          | -         | -           | Final:      | Final:      | -           | - | Final:
//                  |            |           |             | cancel,     | cancel,     |             | | end(fatal) | |
//                  |             | end(req)    | end(req)    |             |                  |
// Final            | -          | -         | -           | -           | -           | -           | - | -
//
// The requested action is what the TERM/INT that began Stopping/R (or ended the
// FatalDelay) asked for; after a FATAL in --dev it is power off (--dev only exits).
#pragma once

#include <string>
#include <vector>

#include "init/machine.h"

namespace torgw::init {

enum class LifeState { Booting, Running, Stopping, FatalDelay, Final };

enum class LifeEvent { StageDone, BootDone, StageFailed, PowerRequest, Interrupt, GaveUp, Stopped, FatalTimer };

enum class Effect {
  StartNextStage,
  AnnounceRunning,
  AnnounceShutdown,
  ReportFatal,
  StopServices,
  StartFatalTimer,
  CancelFatalTimer,
  FinishRequested,
  FinishFatal,
};

struct Lifecycle {
  bool pid1 = true;  // fixed: PID 1 waits fatal_delay after a FATAL, --dev does not
  LifeState state = LifeState::Booting;
  bool stop_for_fatal = false;  // Stopping began with a FATAL (not a request)
  bool fatal_seen = false;      // a FATAL was reported (exit code 1; no second one)
  Action requested = Action::PowerOff;

  bool operator==(const Lifecycle&) const = default;
};

struct Transition {
  Lifecycle next;
  std::vector<Effect> effects;  // in order; empty: the event is ignored
};

// The table above. Pure.
Transition transition(const Lifecycle& now, LifeEvent event);

const char* to_string(LifeState s);
const char* to_string(LifeEvent e);
const char* to_string(Effect e);

}  // namespace torgw::init
