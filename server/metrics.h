// Metrics: outreachd's Prometheus metrics, served by prometheus-cpp's exposer on
// --metrics-listen (GET /metrics, text format). README "Operations" lists every series.
//
// Three sources, each bound here so that the store links no metrics library:
//  - Events pushed as they happen: each RPC's code and duration (RpcMetrics, from the call
//    observer, server/call_observer.h), and the store's write path (store::StoreObserver: batch
//    size, commit latency, refused commands, rebuild progress).
//  - Levels read at scrape time only (a Collectable run by the exposer for each GET): the head
//    position, the writer's queue, access-log appends, subscriptions and each consumer's lag,
//    due and open tasks, refused calls by reason, verification failures, RocksDB's properties,
//    the --db file system's free space, the process (RSS, CPU, fds, start time) and the build.
//    Nothing of these costs the write path anything.
//  - Labels are bounded: method (the server's methods, else "other"), code, reason, kind,
//    consumer (the subscribing principals, at most SubscriptionHub::kMaxConsumers). Never a task
//    id, patient id, note or token.
//
// Thread-safe. The store and server given to Watch must stay alive until Unwatch (or the
// destructor), which waits for a scrape in progress.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "prometheus/counter.h"
#include "prometheus/exposer.h"
#include "prometheus/family.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "store/event_store.h"
#include "store/store_observer.h"

namespace outreach::server {

class OutreachServer;

// Per RPC method and status code: outreach_rpc_requests_total and outreach_rpc_duration_seconds.
// Series are made on first use; after that a call costs one counter add and one histogram
// observation (no lookup: the call observer resolves its method once per call).
class RpcMetrics {
 public:
  struct Series {
    prometheus::Counter* requests;
    prometheus::Histogram* duration;
  };
  // One method's series by code; the call observer keeps a pointer for the call's life.
  class Method {
   public:
    Method(RpcMetrics* owner, std::string name) : owner_(owner), name_(std::move(name)) {}
    void Record(grpc::StatusCode code, absl::Duration duration);

   private:
    static constexpr int kCodes = 17;  // grpc::StatusCode OK .. UNAUTHENTICATED
    RpcMetrics* const owner_;
    const std::string name_;
    std::array<std::atomic<Series*>, kCodes> by_code_{};
  };

  explicit RpcMetrics(prometheus::Registry& registry);
  // The series of `method` (the full gRPC name); a method the server does not serve is "other".
  Method* ForMethod(absl::string_view method);

 private:
  Series* Make(const std::string& method, grpc::StatusCode code) ABSL_LOCKS_EXCLUDED(mu_);

  prometheus::Family<prometheus::Counter>& requests_;
  prometheus::Family<prometheus::Histogram>& duration_;
  absl::flat_hash_map<std::string, std::unique_ptr<Method>> methods_;  // fixed after the ctor
  absl::Mutex mu_;
  std::vector<std::unique_ptr<Series>> made_ ABSL_GUARDED_BY(mu_);
};

class Metrics {
 public:
  // Serves GET /metrics on `listen` (host:port; port 0 picks one). UNAVAILABLE if it cannot
  // bind. `db_dir`: the --db directory, whose file system's free space is reported.
  static absl::StatusOr<std::unique_ptr<Metrics>> Start(const std::string& listen,
                                                        const std::string& db_dir);
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;
  ~Metrics();

  // "host:port" as bound.
  const std::string& address() const { return address_; }

  store::StoreObserver* store_observer();
  RpcMetrics* rpc() { return &rpc_; }

  // From now on each scrape reads `store`'s and `server`'s levels (either may be nullptr).
  void Watch(const store::EventStore* store, const OutreachServer* server);
  // Stops reading them; returns once no scrape uses them.
  void Unwatch() { Watch(nullptr, nullptr); }

 private:
  class StoreEvents;
  class ScrapeCollector;

  explicit Metrics(const std::string& db_dir);

  std::shared_ptr<prometheus::Registry> registry_;
  RpcMetrics rpc_;
  std::unique_ptr<StoreEvents> store_events_;
  std::shared_ptr<ScrapeCollector> scrape_;
  std::unique_ptr<prometheus::Exposer> exposer_;  // stopped first, in the destructor
  int port_ = 0;
  std::string address_;
};

}  // namespace outreach::server
