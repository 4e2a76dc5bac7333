#include "init/lifecycle.h"

namespace torgw::init {

namespace {

Transition ignored(const Lifecycle& now) { return {now, {}}; }

// TERM or INT in Booting or Running: a requested shutdown begins.
Transition request_stop(Lifecycle next, Action a) {
  next.state = LifeState::Stopping;
  next.requested = a;
  return {next, {Effect::AnnounceShutdown, Effect::StopServices}};
}

// A FATAL in Booting or Running: stop everything, then wait (PID 1) or exit (--dev).
Transition fatal_stop(Lifecycle next) {
  next.state = LifeState::Stopping;
  next.stop_for_fatal = true;
  next.fatal_seen = true;
  next.requested = Action::PowerOff;  // --dev's exit; PID 1 uses fatal_action
  return {next, {Effect::ReportFatal, Effect::StopServices}};
}

Action requested_by(const Lifecycle& now, LifeEvent e) {
  // Ctrl-Alt-Del reboots PID 1's machine; Ctrl-C ends --dev like any request.
  return e == LifeEvent::Interrupt && now.pid1 ? Action::Reboot : Action::PowerOff;
}

}  // namespace

Transition transition(const Lifecycle& now, LifeEvent e) {
  Lifecycle next = now;
  switch (now.state) {
    case LifeState::Booting:
      switch (e) {
        case LifeEvent::StageDone: return {next, {Effect::StartNextStage}};
        case LifeEvent::BootDone: next.state = LifeState::Running; return {next, {Effect::AnnounceRunning}};
        case LifeEvent::StageFailed:
        case LifeEvent::GaveUp: return fatal_stop(next);
        case LifeEvent::PowerRequest:
        case LifeEvent::Interrupt: return request_stop(next, requested_by(now, e));
        case LifeEvent::Stopped:
        case LifeEvent::FatalTimer: return ignored(now);
      }
      break;
    case LifeState::Running:
      switch (e) {
        case LifeEvent::GaveUp: return fatal_stop(next);
        case LifeEvent::PowerRequest:
        case LifeEvent::Interrupt: return request_stop(next, requested_by(now, e));
        default: return ignored(now);
      }
    case LifeState::Stopping:
      switch (e) {
        case LifeEvent::GaveUp:
          if (now.fatal_seen) return ignored(now);
          // The shutdown in progress ends it, with the requested action.
          next.fatal_seen = true;
          return {next, {Effect::ReportFatal}};
        case LifeEvent::Stopped:
          if (now.stop_for_fatal && now.pid1) {
            next.state = LifeState::FatalDelay;
            return {next, {Effect::StartFatalTimer}};
          }
          next.state = LifeState::Final;
          return {next, {Effect::FinishRequested}};
        default: return ignored(now);
      }
    case LifeState::FatalDelay:
      switch (e) {
        case LifeEvent::PowerRequest:
        case LifeEvent::Interrupt:
          // A second request during the FATAL delay: go now, as asked.
          next.state = LifeState::Final;
          next.requested = requested_by(now, e);
          return {next, {Effect::CancelFatalTimer, Effect::FinishRequested}};
        case LifeEvent::FatalTimer: next.state = LifeState::Final; return {next, {Effect::FinishFatal}};
        default: return ignored(now);
      }
    case LifeState::Final: return ignored(now);
  }
  return ignored(now);
}

const char* to_string(LifeState s) {
  switch (s) {
    case LifeState::Booting: return "booting";
    case LifeState::Running: return "running";
    case LifeState::Stopping: return "stopping";
    case LifeState::FatalDelay: return "fatal_delay";
    case LifeState::Final: return "final";
  }
  return "?";
}

const char* to_string(LifeEvent e) {
  switch (e) {
    case LifeEvent::StageDone: return "stage_done";
    case LifeEvent::BootDone: return "boot_done";
    case LifeEvent::StageFailed: return "stage_failed";
    case LifeEvent::PowerRequest: return "power_request";
    case LifeEvent::Interrupt: return "interrupt";
    case LifeEvent::GaveUp: return "gave_up";
    case LifeEvent::Stopped: return "stopped";
    case LifeEvent::FatalTimer: return "fatal_timer";
  }
  return "?";
}

const char* to_string(Effect e) {
  switch (e) {
    case Effect::StartNextStage: return "next";
    case Effect::AnnounceRunning: return "up";
    case Effect::AnnounceShutdown: return "shut";
    case Effect::ReportFatal: return "FATAL";
    case Effect::StopServices: return "stop";
    case Effect::StartFatalTimer: return "delay";
    case Effect::CancelFatalTimer: return "cancel";
    case Effect::FinishRequested: return "end(req)";
    case Effect::FinishFatal: return "end(fatal)";
  }
  return "?";
}

}  // namespace torgw::init
