#include <catch2/catch.hpp>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <optional>
#include <string>

#include "common/event.h"
#include "common/fd.h"

using namespace torgw;
using namespace std::chrono_literals;

namespace {

// One event_base per test case; runs it until `stop()` or a hard limit, so a test
// that waits for a callback which never comes fails instead of hanging.
struct Base {
  event_base* base = event_base_new();
  ~Base() { event_base_free(base); }
  void run(std::chrono::milliseconds limit = 2s) {
    event::Timer guard(base);
    guard.start(limit, [this] { event_base_loopbreak(base); });
    event_base_dispatch(base);
  }
  void stop() { event_base_loopbreak(base); }
};

std::pair<UniqueFd, UniqueFd> socket_pair() {
  int sv[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
  return {UniqueFd(sv[0]), UniqueFd(sv[1])};
}

}  // namespace

TEST_CASE("event::Timer fires once, or periodically, and not after cancel()") {
  Base b;
  int once = 0, periodic = 0, cancelled = 0;
  event::Timer t1(b.base), t2(b.base), t3(b.base), end(b.base);
  t1.start(5ms, [&] { ++once; });
  t2.start(
      5ms, [&] { ++periodic; }, true);
  t3.start(5ms, [&] { ++cancelled; });
  CHECK(t3.pending());
  t3.cancel();
  CHECK_FALSE(t3.pending());
  end.start(100ms, [&] { b.stop(); });
  b.run();
  CHECK(once == 1);
  CHECK(periodic >= 3);
  CHECK(cancelled == 0);
  CHECK_FALSE(t1.pending());
  CHECK(t2.pending());
}

TEST_CASE("event::Timer: destroying, resetting or assigning over it cancels it") {
  Base b;
  int ran = 0;
  {
    event::Timer gone(b.base);
    gone.start(1ms, [&] { ++ran; });
  }
  event::Timer reset(b.base);
  reset.start(1ms, [&] { ++ran; });
  reset = event::Timer();
  event::Timer replaced(b.base);
  replaced.start(1ms, [&] { ++ran; });
  replaced = event::Timer(b.base);  // a fresh, unarmed timer over the armed one
  event::Timer end(b.base);
  end.start(50ms, [&] { b.stop(); });
  b.run();
  CHECK(ran == 0);
}

TEST_CASE("event::Timer stays armed when moved; the moved-from one is inert") {
  Base b;
  int moved = 0;
  auto src = std::make_unique<event::Timer>(b.base);
  src->start(10ms, [&] {
    ++moved;
    b.stop();
  });
  event::Timer dst = std::move(*src);
  CHECK(dst.pending());
  CHECK_FALSE(src->pending());
  src->start(1ms, [&] { moved += 100; });  // inert: does nothing
  src.reset();
  b.run();
  CHECK(moved == 1);
}

TEST_CASE("event::Timer: a callback may destroy its own timer") {
  Base b;
  std::string seen;
  auto t = std::make_unique<event::Timer>(b.base);
  // A capture on the heap: if the running callable were destroyed with its owner, this
  // read would be of freed memory (and ASan builds say so).
  std::string text(100, 'x');
  t->start(
      1ms,
      [&, text] {
        t.reset();
        seen = text;
        b.stop();
      },
      true);
  b.run();
  CHECK(t == nullptr);
  CHECK(seen == std::string(100, 'x'));
}

TEST_CASE("event::Timer: an owner destroyed by another callback of the same iteration never runs") {
  Base b;
  int ran = 0;
  std::optional<event::Timer> first(std::in_place, b.base), second(std::in_place, b.base);
  // Both are due in the same iteration; whichever runs first destroys the other.
  first->start(0ms, [&] {
    ++ran;
    second.reset();
  });
  second->start(0ms, [&] {
    ++ran;
    first.reset();
  });
  event::Timer end(b.base);
  end.start(50ms, [&] { b.stop(); });
  ::usleep(2000);
  b.run();
  CHECK(ran == 1);
}

TEST_CASE("event::post runs later, in order, and never after its owner died") {
  Base b;
  std::string order;
  auto owner = std::make_unique<event::Lifetime>();
  event::Lifetime loop_owner;
  event::Timer t(b.base);
  t.start(1ms, [&] {
    event::post(b.base, *owner, [&] { order += "b"; });
    event::post(b.base, *owner, [&] {
      order += "c";
      // Posted from a posted call: the next iteration, after the rest of this batch.
      event::post(b.base, *owner, [&] { order += "e"; });
    });
    event::post(b.base, *owner, [&] { order += "d"; });
    order += "a";
  });
  event::Timer end(b.base);
  end.start(50ms, [&] { b.stop(); });
  b.run();
  CHECK(order == "abcde");

  order.clear();
  event::post(b.base, *owner, [&] { order += "dead"; });
  owner.reset();
  event::post(b.base, loop_owner, [&] { order += "alive"; });
  end.start(50ms, [&] { b.stop(); });
  b.run();
  CHECK(order == "alive");
}

TEST_CASE("event::post: a call that destroys its owner cancels the calls queued after it") {
  Base b;
  std::string order;
  auto owner = std::make_unique<event::Lifetime>();
  event::post(b.base, *owner, [&] {
    order += "a";
    owner.reset();
  });
  event::post(b.base, *owner, [&] { order += "b"; });
  event::Timer end(b.base);
  end.start(50ms, [&] { b.stop(); });
  b.run();
  CHECK(order == "a");
}

TEST_CASE("event::Lifetime guards say whether the owner still exists") {
  event::Lifetime::Guard never;
  CHECK_FALSE(never.alive());
  auto owner = std::make_unique<event::Lifetime>();
  auto g = owner->guard();
  CHECK(g.alive());
  owner.reset();
  CHECK_FALSE(g.alive());
}

TEST_CASE("event::FdWatch reports read and write readiness, and nothing once destroyed") {
  Base b;
  auto [a, peer] = socket_pair();
  int reads = 0, writes = 0;
  short write_flags = 0, read_flags = 0;
  // Writable at once (an empty socket buffer); readable only after the peer writes.
  auto wwatch = std::make_unique<event::FdWatch>(b.base, a.get(), event::kWrite, [&](short ready) {
    ++writes;
    write_flags = ready;
    b.stop();
  });
  event::FdWatch rwatch(b.base, a.get(), event::kRead, [&](short ready) {
    ++reads;
    read_flags = ready;
    char c;
    while (::read(a.get(), &c, 1) == 1) {
    }
    b.stop();
  });
  b.run();
  CHECK(writes >= 1);
  CHECK(write_flags == event::kWrite);
  CHECK(reads == 0);

  wwatch.reset();  // no more write callbacks, although the socket stays writable
  writes = 0;
  REQUIRE(::write(peer.get(), "x", 1) == 1);
  b.run();
  CHECK(reads == 1);
  CHECK(read_flags == event::kRead);
  CHECK(writes == 0);
}

TEST_CASE("event::FdWatch: the read-only form, moved while watching, and destroyed by its own callback") {
  Base b;
  auto [a, peer] = socket_pair();
  int calls = 0;
  std::unique_ptr<event::FdWatch> holder;
  event::FdWatch w(b.base, a.get(), [&] {
    ++calls;
    holder.reset();  // this watch destroys itself
    b.stop();
  });
  holder = std::make_unique<event::FdWatch>(std::move(w));
  CHECK(holder->active());
  CHECK_FALSE(w.active());
  REQUIRE(::write(peer.get(), "x", 1) == 1);
  b.run();
  CHECK(calls == 1);
  CHECK(holder == nullptr);
  // Still readable (nobody read the byte), but nobody watches any more.
  event::Timer end(b.base);
  end.start(30ms, [&] { b.stop(); });
  b.run();
  CHECK(calls == 1);
}

TEST_CASE("event::BufferEvent delivers input and EOF, owns its fd, and stops when destroyed") {
  Base b;
  auto [a, peer] = socket_pair();
  std::string got;
  short events = 0;
  const int fd = a.get();
  std::unique_ptr<event::BufferEvent> be;
  be = std::make_unique<event::BufferEvent>(
      b.base, a.release(),
      [&] {
        char buf[64];
        size_t n;
        while ((n = bufferevent_read(be->get(), buf, sizeof buf)) > 0) got.append(buf, n);
        b.stop();
      },
      [&](short what) {
        events |= what;
        b.stop();
      });
  REQUIRE(*be);
  bufferevent_enable(be->get(), EV_READ);
  REQUIRE(::write(peer.get(), "hello", 5) == 5);
  b.run();
  CHECK(got == "hello");

  peer.reset();
  b.run();
  CHECK((events & BEV_EVENT_EOF) != 0);

  be.reset();
  // The fd is closed with it (libevent finalizes a freed bufferevent on the next loop
  // iteration).
  event::Timer end(b.base);
  end.start(20ms, [&] { b.stop(); });
  b.run();
  CHECK(::fcntl(fd, F_GETFD) < 0);
}

TEST_CASE("event::BufferEvent: a callback may destroy its own owner; a destroyed one never calls back") {
  Base b;
  auto [a1, p1] = socket_pair();
  auto [a2, p2] = socket_pair();
  int calls = 0;
  std::unique_ptr<event::BufferEvent> one, two;
  auto on_read = [&] {
    ++calls;
    // Whichever reads first destroys both: the other one's pending input is never
    // delivered.
    one.reset();
    two.reset();
  };
  one = std::make_unique<event::BufferEvent>(b.base, a1.release(), on_read, nullptr);
  two = std::make_unique<event::BufferEvent>(b.base, a2.release(), on_read, nullptr);
  bufferevent_enable(one->get(), EV_READ);
  bufferevent_enable(two->get(), EV_READ);
  REQUIRE(::write(p1.get(), "x", 1) == 1);
  REQUIRE(::write(p2.get(), "y", 1) == 1);
  event::Timer end(b.base);
  end.start(50ms, [&] { b.stop(); });
  ::usleep(2000);
  b.run();
  CHECK(calls == 1);
  CHECK(one == nullptr);
  CHECK(two == nullptr);
}
