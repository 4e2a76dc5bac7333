// RAII owners of libevent registrations, the one event layer every module uses over a
// caller's event_base (PID 1's loop, a test's, a tool's):
//   Timer       one-shot or periodic timer
//   FdWatch     fd readiness (read and/or write)
//   post()      run a callable on the loop soon, tied to an owner's Lifetime
//   BufferEvent a bufferevent (socket stream) and its callbacks
// Each is a move-only value: destroying (or resetting, or assigning over) one cancels it,
// and a destroyed owner's callback never runs, not even when its event is already
// active in the same loop iteration. A callback may destroy its own owner (the callable
// is copied before it runs). Moving an armed owner keeps it armed.
//
// Lifetime is the "owner is gone" token: an object holds one, hands out Guards to code
// that calls back into the world and must know afterwards whether `this` survived, and
// gives it to post(), which drops the call if the Lifetime died first.
//
// Single-threaded: everything runs on the thread that runs the base. Owners must die
// before their event_base.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

struct event_base;
struct bufferevent;
struct sockaddr;

namespace torgw::event {

// fd readiness flags (libevent's EV_READ / EV_WRITE; checked in event.cpp).
inline constexpr short kRead = 0x02;
inline constexpr short kWrite = 0x04;

class Lifetime {
 public:
  // True while the Lifetime it came from exists. Default-constructed: never alive.
  class Guard {
   public:
    Guard() = default;
    bool alive() const { return !state_.expired(); }

   private:
    friend class Lifetime;
    explicit Guard(std::weak_ptr<void> s) : state_(std::move(s)) {}
    std::weak_ptr<void> state_;
  };

  Lifetime();
  ~Lifetime();
  // Bound to one object's address: neither copied nor moved.
  Lifetime(const Lifetime&) = delete;
  Lifetime& operator=(const Lifetime&) = delete;

  Guard guard() const { return Guard(state_); }

 private:
  friend void post(event_base*, Lifetime&, std::function<void()>);
  struct State;
  std::shared_ptr<State> state_;
};

// Runs `fn` on `base`'s next loop iteration (never inside the caller's stack), in the
// order posted; dropped, never run, if `owner` is destroyed first.
void post(event_base* base, Lifetime& owner, std::function<void()> fn);

class Timer {
 public:
  Timer();  // inert: start() does nothing
  explicit Timer(event_base* base);
  Timer(Timer&&) noexcept;
  Timer& operator=(Timer&&) noexcept;
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;
  ~Timer();

  // (Re)arms the timer: `fn` runs once after `delay`, or every `delay` if periodic.
  void start(std::chrono::milliseconds delay, std::function<void()> fn, bool periodic = false);
  void cancel();
  bool pending() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

class FdWatch {
 public:
  FdWatch();
  // Calls `fn` whenever `fd` is readable. Does not own (close) the fd.
  FdWatch(event_base* base, int fd, std::function<void()> fn);
  // Calls `fn(ready)` whenever `fd` is ready for one of `what` (kRead | kWrite);
  // `ready` says which.
  FdWatch(event_base* base, int fd, short what, std::function<void(short ready)> fn);
  FdWatch(FdWatch&&) noexcept;
  FdWatch& operator=(FdWatch&&) noexcept;
  FdWatch(const FdWatch&) = delete;
  FdWatch& operator=(const FdWatch&) = delete;
  ~FdWatch();

  bool active() const { return impl_ != nullptr; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A bufferevent on a socket it owns (closed with it; libevent finalizes a freed
// bufferevent, and closes the socket, on the loop's next iteration). Callbacks: `on_read` when input
// arrived, `on_event(what)` with libevent's BEV_EVENT_* flags (connected, EOF, error).
class BufferEvent {
 public:
  using ReadCallback = std::function<void()>;
  using EventCallback = std::function<void(short what)>;

  BufferEvent();
  // Takes `fd` (non-blocking); on failure the result is empty and fd is closed.
  BufferEvent(event_base* base, int fd, ReadCallback on_read, EventCallback on_event);
  BufferEvent(BufferEvent&&) noexcept;
  BufferEvent& operator=(BufferEvent&&) noexcept;
  BufferEvent(const BufferEvent&) = delete;
  BufferEvent& operator=(const BufferEvent&) = delete;
  ~BufferEvent();

  explicit operator bool() const { return impl_ != nullptr; }
  bufferevent* get() const;
  // bufferevent_socket_connect(); false if it failed at once (errno set). The event
  // callback may already have run (and may have destroyed this owner) when it returns.
  bool connect(const sockaddr* addr, int len);
  void reset();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace torgw::event
