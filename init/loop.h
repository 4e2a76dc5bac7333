// The event loop PID 1 runs on, and every later stage plugs into: a libevent
// event_base (the control-port client and the metadata fetcher use the same base), with
// signals read from a signalfd (no async handlers: a signal is just another event), RAII
// timers and fd watches.
#pragma once

#include <sys/signalfd.h>

#include <chrono>
#include <functional>
#include <initializer_list>
#include <list>
#include <map>

#include "common/fd.h"
#include "common/result.h"

struct event_base;
struct event;

namespace torgw::init {

class EventLoop;

// A one-shot or periodic timer. Destroying it cancels it.
class Timer {
 public:
  Timer() = default;
  explicit Timer(EventLoop& loop);
  Timer(Timer&&) noexcept;
  Timer& operator=(Timer&&) noexcept;
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  ~Timer();

  // (Re)arms the timer; `fn` runs once after `delay` (or every `delay` if periodic).
  void start(std::chrono::milliseconds delay, std::function<void()> fn, bool periodic = false);
  void cancel();
  bool pending() const;

 private:
  static void trampoline(int, short, void* arg);
  event* ev_ = nullptr;
  std::function<void()> fn_;
};

// Calls `fn` whenever `fd` is readable. Destroying it stops watching (does not close).
class FdWatch {
 public:
  FdWatch() = default;
  FdWatch(EventLoop& loop, int fd, std::function<void()> fn);
  FdWatch(FdWatch&&) noexcept;
  FdWatch& operator=(FdWatch&&) noexcept;
  FdWatch(const FdWatch&) = delete;
  FdWatch& operator=(const FdWatch&) = delete;
  ~FdWatch();

 private:
  static void trampoline(int, short, void* arg);
  event* ev_ = nullptr;
  std::function<void()> fn_;
};

class EventLoop {
 public:
  using SignalHandler = std::function<void(const signalfd_siginfo&)>;

  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  event_base* base() { return base_; }

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
  event_base* base_ = nullptr;
  UniqueFd sigfd_;
  sigset_t mask_{};
  std::map<int, SignalHandler> handlers_;
  FdWatch sig_watch_;
  std::list<Timer> posted_;
};

}  // namespace torgw::init
