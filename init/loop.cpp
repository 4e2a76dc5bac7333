#include "init/loop.h"

#include <event2/event.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace torgw::init {

// ---- Timer ----------------------------------------------------------------------------

Timer::Timer(EventLoop& loop) { ev_ = event_new(loop.base(), -1, 0, &Timer::trampoline, this); }

Timer::Timer(Timer&& o) noexcept { *this = std::move(o); }

Timer& Timer::operator=(Timer&& o) noexcept {
  if (this == &o) return *this;
  if (ev_) event_free(ev_);
  ev_ = std::exchange(o.ev_, nullptr);
  fn_ = std::move(o.fn_);
  if (ev_) {
    // Re-point the callback argument at the new owner, keeping the timer armed.
    timeval tv{};
    const bool armed = event_pending(ev_, EV_TIMEOUT, &tv);
    const short what = event_get_events(ev_);
    event_base* base = event_get_base(ev_);
    event_del(ev_);
    event_assign(ev_, base, -1, what, &Timer::trampoline, this);
    if (armed) {
      timeval now{};
      event_base_gettimeofday_cached(base, &now);
      timeval left{};
      evutil_timersub(&tv, &now, &left);
      if (left.tv_sec < 0) left = timeval{0, 0};
      event_add(ev_, &left);
    }
  }
  return *this;
}

Timer::~Timer() {
  if (ev_) event_free(ev_);
}

void Timer::start(std::chrono::milliseconds delay, std::function<void()> fn, bool periodic) {
  if (!ev_) return;
  event_base* base = event_get_base(ev_);
  event_del(ev_);
  event_assign(ev_, base, -1, periodic ? EV_PERSIST : 0, &Timer::trampoline, this);
  fn_ = std::move(fn);
  timeval tv{static_cast<time_t>(delay.count() / 1000), static_cast<suseconds_t>((delay.count() % 1000) * 1000)};
  event_add(ev_, &tv);
}

void Timer::cancel() {
  if (ev_) event_del(ev_);
}

bool Timer::pending() const { return ev_ && event_pending(ev_, EV_TIMEOUT, nullptr); }

void Timer::trampoline(int, short, void* arg) {
  auto* self = static_cast<Timer*>(arg);
  // Copy: the callback may re-arm or destroy this timer.
  auto fn = self->fn_;
  if (fn) fn();
}

// ---- FdWatch --------------------------------------------------------------------------

FdWatch::FdWatch(EventLoop& loop, int fd, std::function<void()> fn) : fn_(std::move(fn)) {
  ev_ = event_new(loop.base(), fd, EV_READ | EV_PERSIST, &FdWatch::trampoline, this);
  if (ev_) event_add(ev_, nullptr);
}

FdWatch::FdWatch(FdWatch&& o) noexcept { *this = std::move(o); }

FdWatch& FdWatch::operator=(FdWatch&& o) noexcept {
  if (this == &o) return *this;
  if (ev_) event_free(ev_);
  ev_ = std::exchange(o.ev_, nullptr);
  fn_ = std::move(o.fn_);
  if (ev_) {
    event_base* base = event_get_base(ev_);
    int fd = event_get_fd(ev_);
    event_del(ev_);
    event_assign(ev_, base, fd, EV_READ | EV_PERSIST, &FdWatch::trampoline, this);
    event_add(ev_, nullptr);
  }
  return *this;
}

FdWatch::~FdWatch() {
  if (ev_) event_free(ev_);
}

void FdWatch::trampoline(int, short, void* arg) {
  auto* self = static_cast<FdWatch*>(arg);
  auto fn = self->fn_;
  if (fn) fn();
}

// ---- EventLoop ------------------------------------------------------------------------

EventLoop::EventLoop() {
  event_config* cfg = event_config_new();
  // A PID 1 without /dev mounted yet cannot rely on anything but epoll.
  base_ = event_base_new_with_config(cfg);
  event_config_free(cfg);
  sigemptyset(&mask_);
}

EventLoop::~EventLoop() {
  sig_watch_ = FdWatch();
  posted_.clear();
  if (base_) event_base_free(base_);
}

Status EventLoop::on_signal(int sig, SignalHandler handler) {
  handlers_[sig] = std::move(handler);
  sigaddset(&mask_, sig);
  if (sigprocmask(SIG_BLOCK, &mask_, nullptr) != 0)
    return make_error("init.sigprocmask", std::strerror(errno));
  int fd = ::signalfd(sigfd_.valid() ? sigfd_.get() : -1, &mask_, SFD_NONBLOCK | SFD_CLOEXEC);
  if (fd < 0) return make_error("init.signalfd", std::strerror(errno));
  if (!sigfd_.valid()) {
    sigfd_.reset(fd);
    sig_watch_ = FdWatch(*this, sigfd_.get(), [this] { read_signals(); });
  }
  return {};
}

void EventLoop::read_signals() {
  signalfd_siginfo si;
  while (true) {
    ssize_t n = ::read(sigfd_.get(), &si, sizeof si);
    if (n != static_cast<ssize_t>(sizeof si)) break;
    auto it = handlers_.find(static_cast<int>(si.ssi_signo));
    if (it != handlers_.end()) it->second(si);
  }
}

bool EventLoop::run() { return event_base_dispatch(base_) >= 0; }

void EventLoop::stop() { event_base_loopbreak(base_); }

void EventLoop::post(std::function<void()> fn) {
  // Drop timers that already fired.
  std::erase_if(posted_, [](const Timer& t) { return !t.pending(); });
  posted_.emplace_back(*this);
  posted_.back().start(std::chrono::milliseconds(0), std::move(fn));
}

}  // namespace torgw::init
