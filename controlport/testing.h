// Test-only API of controlport/: a synchronous wrapper for tests, the private-network
// harness (tests/tornet) and benchmarks. Never for PID 1, which runs every connection on
// its own loop (controlport/controlport.h). Only files under a tests/ folder, bench/ and
// fuzz/ include this (scripts/check-modules enforces it); the bodies live in
// controlport.cpp beside the Connection they drive.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "controlport/controlport.h"

namespace torgw::controlport {

// Runs `base` until `done()` is true or `timeout` passes; returns done(). For tests,
// tools and the harness; PID 1 runs its own loop.
bool run_until(event_base* base, const std::function<bool()>& done, std::chrono::milliseconds timeout);

// A connection with its own event_base, driven synchronously: for tests, the private
// network harness and benchmarks, never for PID 1. Events that arrive are queued and
// can be waited for.
class BlockingControl {
 public:
  ~BlockingControl();
  static Result<std::unique_ptr<BlockingControl>> open(const Endpoint& ep, const AuthOptions& auth,
                                                       ConnectOptions opts = {});
  const ProtocolInfo& protocol_info() const { return info_; }
  Result<Reply> command(std::string_view line);
  Result<std::vector<std::pair<std::string, std::string>>> getinfo(std::vector<std::string> keys);
  Result<std::string> getinfo1(const std::string& key);
  Status setevents(const std::vector<std::string>& events);
  Result<AddOnionReply> add_onion(const AddOnionRequest& req);
  // The first queued or arriving event for which pred is true (earlier non-matching
  // events are dropped), or nullopt after `timeout`.
  std::optional<Reply> wait_event(const std::function<bool(const Reply&)>& pred, std::chrono::milliseconds timeout);
  // Set when the connection has closed.
  const std::optional<Error>& closed() const { return closed_; }
  Connection& connection() { return *conn_; }

 private:
  BlockingControl() = default;
  template <class T>
  Result<T> wait_for(std::optional<Result<T>>& slot);
  event_base* base_ = nullptr;
  std::unique_ptr<Connection> conn_;
  ProtocolInfo info_;
  std::deque<Reply> events_;
  std::optional<Error> closed_;
  std::chrono::milliseconds timeout_{30000};
};

}  // namespace torgw::controlport
