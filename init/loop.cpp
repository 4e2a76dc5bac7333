#include "init/loop.h"

#include <event2/event.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace torgw::init {

Timer::Timer(EventLoop& loop) : event::Timer(loop.base()) {}

FdWatch::FdWatch(EventLoop& loop, int fd, std::function<void()> fn) : event::FdWatch(loop.base(), fd, std::move(fn)) {}

// ---- EventLoop ------------------------------------------------------------------------

void EventLoop::BaseDeleter::operator()(event_base* b) const { event_base_free(b); }

EventLoop::EventLoop() {
  event_config* cfg = event_config_new();
  // A PID 1 without /dev mounted yet cannot rely on anything but epoll.
  base_.reset(event_base_new_with_config(cfg));
  event_config_free(cfg);
  sigemptyset(&mask_);
}

EventLoop::~EventLoop() = default;

Status EventLoop::on_signal(int sig, SignalHandler handler) {
  handlers_[sig] = std::move(handler);
  sigaddset(&mask_, sig);
  if (sigprocmask(SIG_BLOCK, &mask_, nullptr) != 0) return make_error("init.sigprocmask", std::strerror(errno));
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

bool EventLoop::run() { return event_base_dispatch(base_.get()) >= 0; }

void EventLoop::stop() { event_base_loopbreak(base_.get()); }

void EventLoop::post(std::function<void()> fn) { event::post(base_.get(), posted_, std::move(fn)); }

// ---- run_in_sequence ------------------------------------------------------------------

namespace {

struct Sequence {
  EventLoop& loop;
  std::vector<SequenceStep> steps;
  std::function<void()> done;
  std::size_t next = 0;
};

void advance(const std::shared_ptr<Sequence>& seq) {
  if (seq->next == seq->steps.size()) {
    auto done = std::move(seq->done);
    if (done) done();
    return;
  }
  auto& step = seq->steps[seq->next++];
  step([seq] { seq->loop.post([seq] { advance(seq); }); });
}

}  // namespace

void run_in_sequence(EventLoop& loop, std::vector<SequenceStep> steps, std::function<void()> done) {
  advance(std::make_shared<Sequence>(Sequence{loop, std::move(steps), std::move(done)}));
}

}  // namespace torgw::init
