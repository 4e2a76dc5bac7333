#include <catch2/catch.hpp>

#include <signal.h>

#include <chrono>
#include <memory>

#include "init/loop.h"

using namespace torgw::init;
using namespace std::chrono_literals;

TEST_CASE("timers: fire once, periodic, cancelled by destruction, movable while armed") {
  EventLoop loop;
  int once = 0, periodic = 0, destroyed = 0, moved = 0;
  Timer a(loop);
  a.start(10ms, [&] { ++once; });
  Timer p(loop);
  p.start(
      5ms, [&] { ++periodic; }, true);
  {
    Timer gone(loop);
    gone.start(1ms, [&] { ++destroyed; });
  }
  auto src = std::make_unique<Timer>(loop);
  src->start(20ms, [&] { ++moved; });
  CHECK(src->pending());
  Timer dst = std::move(*src);
  src.reset();  // the moved-from shell goes away; the armed event lives on in dst
  CHECK(dst.pending());
  Timer stop(loop);
  stop.start(200ms, [&] { loop.stop(); });
  loop.run();
  CHECK(once == 1);
  CHECK(periodic >= 5);
  CHECK(destroyed == 0);
  CHECK(moved == 1);
  CHECK_FALSE(dst.pending());
}

TEST_CASE("post runs outside the current callback, in order") {
  EventLoop loop;
  std::string order;
  Timer t(loop);
  t.start(1ms, [&] {
    loop.post([&] { order += "b"; });
    loop.post([&] {
      order += "c";
      loop.stop();
    });
    order += "a";
  });
  loop.run();
  CHECK(order == "abc");
}

TEST_CASE("signals arrive through the signalfd as loop events") {
  EventLoop loop;
  int got = 0;
  REQUIRE(loop.on_signal(SIGUSR2,
                         [&](const signalfd_siginfo& si) {
                           got = static_cast<int>(si.ssi_signo);
                           loop.stop();
                         })
              .ok());
  Timer t(loop);
  t.start(1ms, [] { ::raise(SIGUSR2); });
  Timer limit(loop);
  limit.start(10s, [&] { loop.stop(); });
  loop.run();
  CHECK(got == SIGUSR2);
}
