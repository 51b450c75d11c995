// The traffic outreach-load sends: one Workload per scenario, over a set of separate channels.
//
//   baseline       grpc.health.v1.Health/Check: the cost of gRPC alone, for ratios.
//   create         TaskService/CreateTask, a new manual task each time.
//   log_contact    TaskService/LogContact with a follow-up date on preloaded tasks, round-robin.
//   log_and_close  TaskService/LogContact with close_task on a task nobody closed yet: taken from
//                  a preloaded pool, or, once the pool is empty, created first (that CreateTask is
//                  reported as untimed, so the latency is the close alone; see ClosePool).
//   list           TaskService/ListTasks, pages of 50 of the default worklist: every fourth
//                  request reads the first page, the others follow the latest next_page_token.
//   mixed          15% create, 10% close (tasks this run created), 45% log_contact, 25% list,
//                  5% GetTask.
//
// Follow-up dates are tomorrow in UTC or later (tomorrow in UTC is today or later in every time
// zone, so the server's --time-zone never makes them "in the past"). Every call has a 10 s
// deadline. Thread-safe: Issue runs on many threads.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "outreach/v1/task_service.grpc.pb.h"
#include "tests/load/load_driver.h"

namespace outreach::load {

inline constexpr absl::Duration kCallDeadline = absl::Seconds(10);

// `channels` separate HTTP/2 connections to one server (distinct channel arguments keep gRPC
// from sharing a subchannel between them). Thread-safe.
class Connections {
 public:
  // INVALID_ARGUMENT unless `target` is 127.0.0.1:PORT or localhost:PORT (this tool never sends
  // traffic off the machine).
  static absl::StatusOr<std::unique_ptr<Connections>> Open(const std::string& target,
                                                           int channels);
  // True once every channel is connected, false at the deadline.
  bool WaitConnected(absl::Duration timeout);

  int size() const { return static_cast<int>(channels_.size()); }
  grpc::health::v1::Health::Stub& health(uint64_t i) { return *health_[i % health_.size()]; }
  v1::TaskService::Stub& tasks(uint64_t i) { return *tasks_[i % tasks_.size()]; }

 private:
  Connections() = default;
  std::vector<std::shared_ptr<grpc::Channel>> channels_;
  std::vector<std::unique_ptr<grpc::health::v1::Health::Stub>> health_;
  std::vector<std::unique_ptr<v1::TaskService::Stub>> tasks_;
};

// Ids of tasks that stay open: filled by a preload, then read-only while scenarios run.
class OpenTasks {
 public:
  void Add(std::string task_id) ABSL_LOCKS_EXCLUDED(mu_);
  // Freezes the set for lock-free reads; Add is not allowed afterwards.
  void Freeze() ABSL_LOCKS_EXCLUDED(mu_);
  std::size_t size() const { return frozen_.size(); }
  const std::string& at(uint64_t i) const { return frozen_[i % frozen_.size()]; }

 private:
  absl::Mutex mu_;
  std::vector<std::string> adding_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> frozen_;
};

// Open tasks waiting to be closed, each handed out once. Thread-safe.
class ClosePool {
 public:
  void Push(std::string task_id) ABSL_LOCKS_EXCLUDED(mu_);
  // False when empty.
  bool Pop(std::string* task_id) ABSL_LOCKS_EXCLUDED(mu_);
  std::size_t size() const ABSL_LOCKS_EXCLUDED(mu_);
  // log_and_close found the pool empty and created the task it closed.
  void CountInlineCreate() { inline_creates_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t inline_creates() const { return inline_creates_.load(std::memory_order_relaxed); }

 private:
  mutable absl::Mutex mu_;
  std::deque<std::string> ids_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> inline_creates_{0};
};

// What scenarios share: the connections, a nonce that keeps this run's request ids apart from
// any earlier run's on the same server, and the date follow-ups are set from.
struct WorkloadContext {
  Connections* connections = nullptr;
  std::string run_nonce;
  absl::CivilDay tomorrow_utc;
  bool request_ids = true;  // send a request_id (the idempotency path) on every write
  std::string bearer_token;  // sent as "authorization: Bearer <token>" when not empty
};

// The scenario's workload, or INVALID_ARGUMENT for an unknown name. `open_tasks` must be
// frozen and non-empty for log_contact and mixed; `close_pool` feeds log_and_close (and counts
// its inline creates) and may be empty.
absl::StatusOr<std::unique_ptr<Workload>> MakeWorkload(const std::string& scenario,
                                                       const WorkloadContext& context,
                                                       const OpenTasks* open_tasks,
                                                       ClosePool* close_pool);

// Creates tasks for `open_tasks` or `close_pool`: each id is added as its CreateTask returns.
std::unique_ptr<Workload> MakePreloadWorkload(const WorkloadContext& context,
                                              OpenTasks* open_tasks, ClosePool* close_pool);

// The scenarios MakeWorkload knows, in the order outreach-load runs them with --scenario=all.
const std::vector<std::string>& ScenarioNames();

}  // namespace outreach::load
