// The load driver: keeps requests of one Workload in flight and measures them.
//
//  - Closed loop (RunOptions::rate == 0): `concurrency` requests are always in flight; each
//    completion starts the next one. Latency is completion minus start.
//  - Open loop (rate > 0): requests start at fixed intended times (start + i / rate) whether or
//    not earlier ones finished, up to max_in_flight. Latency is completion minus the INTENDED
//    start, so a server (or client) that falls behind shows up as queueing in the percentiles
//    instead of silently lowering the offered load (no coordinated omission).
//
// Requests are asynchronous (gRPC's callback API): Workload::Issue only starts a call, and its
// completion runs on a gRPC thread, which records it and, in a closed loop, issues the next one.
// No thread per request. Run() blocks the calling thread, which prints a progress line to stderr
// every second, until the duration (or max_requests) is reached and every request has ended.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/time/time.h"
#include "tests/load/latency_histogram.h"

namespace outreach::load {

using SteadyClock = std::chrono::steady_clock;

// Ends one request: its status, and how long of it was setup the measurement must not count
// (log_and_close creating a task when its preloaded ones run out). Called exactly once.
using Done = std::function<void(const grpc::Status& status, SteadyClock::duration untimed)>;

// One kind of traffic. Issue must not block: it starts an asynchronous call and returns.
// Implementations are called from many threads at once.
class Workload {
 public:
  virtual ~Workload() = default;
  virtual void Issue(uint64_t sequence, Done done) = 0;
};

struct RunOptions {
  std::string label;           // names the run on the progress line
  int concurrency = 1;         // closed loop: requests in flight
  double rate = 0;             // > 0: open loop at this many requests per second
  int max_in_flight = 10000;   // open loop: the pacer waits (the wait counts as latency) beyond
  absl::Duration duration = absl::Seconds(5);
  uint64_t max_requests = 0;   // closed loop: stop after this many requests (0 = no limit)
  bool progress = true;        // the once-a-second progress line on stderr
};

struct RunResult {
  uint64_t requests = 0;  // completed, successful or not
  uint64_t errors = 0;
  std::map<std::string, uint64_t> error_codes;  // "DEADLINE_EXCEEDED" -> count
  std::string first_error;                      // the first failure's code and message
  double elapsed_seconds = 0;                   // from the first start to the last completion
  double rps = 0;
  double p50_ms = 0, p90_ms = 0, p99_ms = 0, p999_ms = 0, max_ms = 0, mean_ms = 0;
};

RunResult Run(Workload& workload, const RunOptions& options);

// "DEADLINE_EXCEEDED" for grpc::StatusCode::DEADLINE_EXCEEDED, and so on.
std::string StatusCodeName(grpc::StatusCode code);

}  // namespace outreach::load
