#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "init/lifecycle.h"
#include "init/loop.h"

using namespace torgw::init;
using namespace std::chrono_literals;

namespace {

// The rows of the table in init/lifecycle.h, as machine values.
struct Row {
  const char* name;
  Lifecycle at;
};

Lifecycle make(bool pid1, LifeState s, bool stop_for_fatal = false, bool fatal_seen = false,
               Action requested = Action::PowerOff) {
  Lifecycle l;
  l.pid1 = pid1;
  l.state = s;
  l.stop_for_fatal = stop_for_fatal;
  l.fatal_seen = fatal_seen;
  l.requested = requested;
  return l;
}

std::vector<Row> rows(bool pid1) {
  // Stopping/R and Stopping/RF after a TERM (power off); FatalDelay after a FATAL.
  return {
      {"Booting", make(pid1, LifeState::Booting)},
      {"Running", make(pid1, LifeState::Running)},
      {"Stopping/R", make(pid1, LifeState::Stopping, false, false, Action::Halt)},
      {"Stopping/RF", make(pid1, LifeState::Stopping, false, true, Action::Halt)},
      {"Stopping/F", make(pid1, LifeState::Stopping, true, true)},
      {"FatalDelay", make(pid1, LifeState::FatalDelay, true, true)},
      {"Final", make(pid1, LifeState::Final, false, false, Action::Halt)},
  };
}

const std::vector<LifeEvent> kColumns{LifeEvent::StageDone,    LifeEvent::BootDone,  LifeEvent::StageFailed,
                                      LifeEvent::PowerRequest, LifeEvent::Interrupt, LifeEvent::GaveUp,
                                      LifeEvent::Stopped,      LifeEvent::FatalTimer};

// One cell written out by hand from the comment's table: the next state as a row name
// (with the requested action where it matters) and the effects. "-" = ignored.
std::string cell(const Lifecycle& now, LifeEvent e) {
  Transition t = transition(now, e);
  if (t.effects.empty()) {
    CHECK(t.next == now);  // ignored means nothing changes
    return "-";
  }
  std::string row;
  switch (t.next.state) {
    case LifeState::Stopping:
      row = t.next.stop_for_fatal ? "Stopping/F" : t.next.fatal_seen ? "Stopping/RF" : "Stopping/R";
      break;
    default: row = to_string(t.next.state);
  }
  CHECK(t.next.pid1 == now.pid1);
  std::string out = row + "(" + to_string(t.next.requested) + "):";
  for (Effect fx : t.effects) out += std::string(" ") + to_string(fx);
  return out;
}

// Every row x column of the table against the hand-written cells.
template <class Rows>
void check_table(const Rows& rs, const std::vector<std::vector<std::string>>& expected) {
  REQUIRE(rs.size() == expected.size());
  for (std::size_t r = 0; r < rs.size(); ++r) {
    REQUIRE(expected[r].size() == kColumns.size());
    for (std::size_t c = 0; c < kColumns.size(); ++c) {
      INFO(rs[r].name << " x " << to_string(kColumns[c]));
      CHECK(cell(rs[r].at, kColumns[c]) == expected[r][c]);
    }
  }
}

}  // namespace

TEST_CASE("lifecycle: every cell of the table, PID 1") {
  const std::vector<std::vector<std::string>> expected{
      // stage done, boot done, stage fail, TERM, INT, gave up, stopped, timer
      {"booting(poweroff): next", "running(poweroff): up", "Stopping/F(poweroff): FATAL stop",
       "Stopping/R(poweroff): shut stop", "Stopping/R(reboot): shut stop", "Stopping/F(poweroff): FATAL stop", "-",
       "-"},
      {"-", "-", "-", "Stopping/R(poweroff): shut stop", "Stopping/R(reboot): shut stop",
       "Stopping/F(poweroff): FATAL stop", "-", "-"},
      {"-", "-", "-", "-", "-", "Stopping/RF(halt): FATAL", "final(halt): end(req)", "-"},
      {"-", "-", "-", "-", "-", "-", "final(halt): end(req)", "-"},
      {"-", "-", "-", "-", "-", "-", "fatal_delay(poweroff): delay", "-"},
      {"-", "-", "-", "final(poweroff): cancel end(req)", "final(reboot): cancel end(req)", "-", "-",
       "final(poweroff): end(fatal)"},
      {"-", "-", "-", "-", "-", "-", "-", "-"},
  };
  check_table(rows(true), expected);
}

TEST_CASE("lifecycle: every cell of the table, --dev (no FATAL delay, Ctrl-C powers off)") {
  const std::vector<std::vector<std::string>> expected{
      {"booting(poweroff): next", "running(poweroff): up", "Stopping/F(poweroff): FATAL stop",
       "Stopping/R(poweroff): shut stop", "Stopping/R(poweroff): shut stop", "Stopping/F(poweroff): FATAL stop", "-",
       "-"},
      {"-", "-", "-", "Stopping/R(poweroff): shut stop", "Stopping/R(poweroff): shut stop",
       "Stopping/F(poweroff): FATAL stop", "-", "-"},
      {"-", "-", "-", "-", "-", "Stopping/RF(halt): FATAL", "final(halt): end(req)", "-"},
      {"-", "-", "-", "-", "-", "-", "final(halt): end(req)", "-"},
      {"-", "-", "-", "-", "-", "-", "final(poweroff): end(req)", "-"},
      // --dev never enters FatalDelay; the row still behaves as PID 1's would.
      {"-", "-", "-", "final(poweroff): cancel end(req)", "final(poweroff): cancel end(req)", "-", "-",
       "final(poweroff): end(fatal)"},
      {"-", "-", "-", "-", "-", "-", "-", "-"},
  };
  check_table(rows(false), expected);
}

TEST_CASE("lifecycle: the paths the boot takes, end to end") {
  // A FATAL while booting in PID 1: stop, wait, then fatal_action; a SIGTERM meanwhile
  // is ignored until the services are stopped.
  Lifecycle l;
  for (LifeEvent e : {LifeEvent::StageDone, LifeEvent::StageFailed, LifeEvent::PowerRequest, LifeEvent::Stopped})
    l = transition(l, e).next;
  CHECK(l.state == LifeState::FatalDelay);
  auto end = transition(l, LifeEvent::FatalTimer);
  CHECK(end.next.state == LifeState::Final);
  CHECK(end.effects == std::vector<Effect>{Effect::FinishFatal});

  // A request, then a child gives up: exit code 1 (FATAL), but the requested action.
  Lifecycle r;
  r = transition(r, LifeEvent::BootDone).next;
  r = transition(r, LifeEvent::Interrupt).next;
  r = transition(r, LifeEvent::GaveUp).next;
  CHECK(r.fatal_seen);
  auto fin = transition(r, LifeEvent::Stopped);
  CHECK(fin.next.state == LifeState::Final);
  CHECK(fin.next.requested == Action::Reboot);
  CHECK(fin.effects == std::vector<Effect>{Effect::FinishRequested});
}

TEST_CASE("run_in_sequence: each step after the previous one's next(), on a later iteration; done last") {
  EventLoop loop;
  std::string order;
  std::function<void()> held;  // step 1 finishes later, from a timer
  Timer later(loop);
  std::vector<SequenceStep> steps;
  steps.push_back([&](std::function<void()> next) {
    order += "1";
    held = std::move(next);
    later.start(5ms, [&] {
      order += "t";
      held();
      order += "r";  // the next step has not run inside next()
    });
  });
  steps.push_back([&](std::function<void()> next) {
    order += "2";
    next();
    order += "x";
  });
  run_in_sequence(loop, std::move(steps), [&] {
    order += "d";
    loop.stop();
  });
  CHECK(order == "1");  // the first step at once
  Timer limit(loop);
  limit.start(2s, [&] { loop.stop(); });
  loop.run();
  CHECK(order == "1tr2xd");

  std::string empty;
  run_in_sequence(loop, {}, [&] { empty = "done"; });
  CHECK(empty == "done");  // no steps: at once
}
