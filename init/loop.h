// The event loop PID 1 runs on, and every later stage plugs into: a libevent
// event_base (the control-port client and the metadata fetcher use the same base), with
// signals read from a signalfd (no async handlers: a signal is just another event), and
// common/event's RAII timers and fd watches.
#pragma once

#include <sys/signalfd.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "common/event.h"
#include "common/fd.h"
#include "common/result.h"

struct event_base;

namespace torgw::init {

class EventLoop;

// common/event's owners, constructed on an EventLoop. Destroying one cancels it.
class Timer : public event::Timer {
 public:
  Timer() = default;
  explicit Timer(EventLoop& loop);
};

// Calls `fn` whenever `fd` is readable. Destroying it stops watching (does not close).
class FdWatch : public event::FdWatch {
 public:
  FdWatch() = default;
  FdWatch(EventLoop& loop, int fd, std::function<void()> fn);
};

class EventLoop {
 public:
  using SignalHandler = std::function<void(const signalfd_siginfo&)>;

  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  event_base* base() { return base_.get(); }

  // Blocks `sig` for the whole process and delivers it through the signalfd to
  // `handler` on the loop. Children must unblock (spawn() does). Single-threaded
  // processes only (PID 1, torgw-init --dev, tests that own the process).
  Status on_signal(int sig, SignalHandler handler);

  // Runs until stop(); returns false if libevent failed.
  bool run();
  void stop();
  // Runs `fn` on the next loop iteration (outside the current callback).
  void post(std::function<void()> fn);

 private:
  void read_signals();
  struct BaseDeleter {
    void operator()(event_base* b) const;
  };
  // First, so it is destroyed last: every owner below cancels on it first.
  std::unique_ptr<event_base, BaseDeleter> base_;
  UniqueFd sigfd_;
  sigset_t mask_{};
  std::map<int, SignalHandler> handlers_;
  FdWatch sig_watch_;
  event::Lifetime posted_;  // owns what post() queued
};

// Runs `steps` one after another: each gets a `next` to call when it has finished
// (at once or later, from any callback); the following step then starts on a later
// loop iteration, outside that callback. `done` runs after the last step, the same
// way; with no steps, at once.
using SequenceStep = std::function<void(std::function<void()> next)>;
void run_in_sequence(EventLoop& loop, std::vector<SequenceStep> steps, std::function<void()> done);

}  // namespace torgw::init
