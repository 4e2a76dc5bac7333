#include "common/event.h"

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <unistd.h>

#include <deque>
#include <utility>

namespace torgw::event {

static_assert(kRead == EV_READ && kWrite == EV_WRITE, "kRead/kWrite must be libevent's flags");

namespace {

timeval to_timeval(std::chrono::milliseconds ms) {
  if (ms.count() < 0) ms = std::chrono::milliseconds(0);
  return timeval{static_cast<time_t>(ms.count() / 1000), static_cast<suseconds_t>((ms.count() % 1000) * 1000)};
}

struct EventDeleter {
  void operator()(::event* ev) const { event_free(ev); }
};
using EventPtr = std::unique_ptr<::event, EventDeleter>;

}  // namespace

// ---- Lifetime and post() ----------------------------------------------------------------
//
// The posted calls queue in the Lifetime's state behind one zero-delay timer, so they
// run in the order posted, and destroying the Lifetime frees the queue and the timer
// (libevent forgets it: nothing fires). The timer's callback takes the queue as it is
// (later posts wait for the next iteration) and stops as soon as a call has destroyed
// the Lifetime.

struct Lifetime::State : std::enable_shared_from_this<Lifetime::State> {
  EventPtr ev;
  std::deque<std::function<void()>> queue;

  static void fire(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<State*>(arg);
    std::weak_ptr<State> alive = self->weak_from_this();
    auto batch = std::move(self->queue);
    self->queue.clear();
    for (auto& fn : batch) {
      if (alive.expired()) return;
      if (fn) fn();
    }
  }
};

Lifetime::Lifetime() : state_(std::make_shared<State>()) {}
Lifetime::~Lifetime() = default;

void post(event_base* base, Lifetime& owner, std::function<void()> fn) {
  auto& st = *owner.state_;
  if (!st.ev) st.ev.reset(event_new(base, -1, 0, &Lifetime::State::fire, &st));
  if (!st.ev) return;
  st.queue.push_back(std::move(fn));
  if (!event_pending(st.ev.get(), EV_TIMEOUT, nullptr)) {
    timeval zero{0, 0};
    event_add(st.ev.get(), &zero);
  }
}

// ---- Timer ------------------------------------------------------------------------------

struct Timer::Impl {
  EventPtr ev;
  std::function<void()> fn;

  static void fire(evutil_socket_t, short, void* arg) {
    // A copy: the callback may re-arm or destroy the timer (and this Impl with it).
    auto fn = static_cast<Impl*>(arg)->fn;
    if (fn) fn();
  }
};

Timer::Timer(event_base* base) : impl_(std::make_unique<Impl>()) {
  impl_->ev.reset(event_new(base, -1, 0, &Impl::fire, impl_.get()));
}
Timer::Timer() = default;
Timer::Timer(Timer&&) noexcept = default;
Timer& Timer::operator=(Timer&&) noexcept = default;
Timer::~Timer() = default;

void Timer::start(std::chrono::milliseconds delay, std::function<void()> fn, bool periodic) {
  if (!impl_ || !impl_->ev) return;
  ::event* ev = impl_->ev.get();
  event_base* base = event_get_base(ev);
  event_del(ev);
  event_assign(ev, base, -1, periodic ? EV_PERSIST : 0, &Impl::fire, impl_.get());
  impl_->fn = std::move(fn);
  timeval tv = to_timeval(delay);
  event_add(ev, &tv);
}

void Timer::cancel() {
  if (impl_ && impl_->ev) event_del(impl_->ev.get());
}

bool Timer::pending() const { return impl_ && impl_->ev && event_pending(impl_->ev.get(), EV_TIMEOUT, nullptr); }

// ---- FdWatch ----------------------------------------------------------------------------

struct FdWatch::Impl {
  EventPtr ev;
  std::function<void(short)> fn;

  static void fire(evutil_socket_t, short what, void* arg) {
    auto fn = static_cast<Impl*>(arg)->fn;  // a copy, as for Timer
    if (fn) fn(static_cast<short>(what & (EV_READ | EV_WRITE)));
  }
};

FdWatch::FdWatch(event_base* base, int fd, std::function<void()> fn)
    : FdWatch(base, fd, kRead, [fn = std::move(fn)](short) {
        if (fn) fn();
      }) {}

FdWatch::FdWatch(event_base* base, int fd, short what, std::function<void(short)> fn)
    : impl_(std::make_unique<Impl>()) {
  impl_->fn = std::move(fn);
  impl_->ev.reset(
      event_new(base, fd, static_cast<short>((what & (EV_READ | EV_WRITE)) | EV_PERSIST), &Impl::fire, impl_.get()));
  if (impl_->ev) event_add(impl_->ev.get(), nullptr);
  else impl_.reset();
}

FdWatch::FdWatch() = default;
FdWatch::FdWatch(FdWatch&&) noexcept = default;
FdWatch& FdWatch::operator=(FdWatch&&) noexcept = default;
FdWatch::~FdWatch() = default;

// ---- BufferEvent ------------------------------------------------------------------------

struct BufferEvent::Impl {
  bufferevent* bev = nullptr;
  ReadCallback on_read;
  EventCallback on_event;

  ~Impl() {
    if (bev) bufferevent_free(bev);
  }
  static void read_cb(bufferevent*, void* arg) {
    auto fn = static_cast<Impl*>(arg)->on_read;  // a copy: the callback may destroy us
    if (fn) fn();
  }
  static void event_cb(bufferevent*, short what, void* arg) {
    auto fn = static_cast<Impl*>(arg)->on_event;
    if (fn) fn(what);
  }
};

BufferEvent::BufferEvent(event_base* base, int fd, ReadCallback on_read, EventCallback on_event)
    : impl_(std::make_unique<Impl>()) {
  impl_->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
  if (!impl_->bev) {
    ::close(fd);
    impl_.reset();
    return;
  }
  impl_->on_read = std::move(on_read);
  impl_->on_event = std::move(on_event);
  bufferevent_setcb(impl_->bev, &Impl::read_cb, nullptr, &Impl::event_cb, impl_.get());
}

BufferEvent::BufferEvent() = default;
BufferEvent::BufferEvent(BufferEvent&&) noexcept = default;
BufferEvent& BufferEvent::operator=(BufferEvent&&) noexcept = default;
BufferEvent::~BufferEvent() = default;

bufferevent* BufferEvent::get() const { return impl_ ? impl_->bev : nullptr; }

bool BufferEvent::connect(const sockaddr* addr, int len) {
  if (!impl_) return false;
  // libevent's prototype takes a non-const sockaddr but does not write to it.
  return bufferevent_socket_connect(impl_->bev, const_cast<sockaddr*>(addr), len) == 0;
}

void BufferEvent::reset() { impl_.reset(); }

}  // namespace torgw::event
