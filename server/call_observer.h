// CallObserver: the one place that sees every RPC finish. A gRPC server interceptor (one per
// call, made by the factory the server installs) records the call's method, status code and
// duration into the RPC metrics (server/metrics.h; none without --metrics-listen) and writes its
// request log line (logging/log.h, level info):
//
//   {"ts":"...","level":"info","msg":"request","method":"/outreach.v1.TaskService/LogContact",
//    "code":"OK","duration_ms":3.2,"principal":"nurse.kim","on_behalf_of":"","request_id":"call-1",
//    "task_id":"t1","peer":"ipv4:127.0.0.1:50412"}
//
// What a line may hold is fixed here: the method, the code, the duration, the principal and
// on-behalf-of (ids), the peer, and, from an outreach.v1 request, only its `request_id` and
// `task_id` fields. Never notes, titles, patient ids or credentials.
//
// Who the caller is comes from CallSecurity::Authorize (NoteCaller), which every handler calls
// first; the interceptor finds its call's note by the call's ServerContext. A call refused before
// it names a principal logs an empty one.
//
// Thread-safe; must outlive the gRPC server it observes.
#pragma once

#include <array>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/server_interceptor.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "server/metrics.h"

namespace outreach::server {

class CallObserver {
 public:
  // `rpc_metrics` nullptr: request log lines only.
  explicit CallObserver(RpcMetrics* rpc_metrics) : rpc_metrics_(rpc_metrics) {}
  CallObserver(const CallObserver&) = delete;
  CallObserver& operator=(const CallObserver&) = delete;

  // For ServerBuilder::experimental().SetInterceptorCreators.
  std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> NewFactory();

  // Who the call on `context` is (CallSecurity::Authorize). Ignored for a call not observed.
  void NoteCaller(const grpc::ServerContextBase* context, absl::string_view principal,
                  absl::string_view on_behalf_of);

  // What one call's line and series need; owned by its interceptor.
  struct Call {
    std::string principal;
    std::string on_behalf_of;
  };

 private:
  friend class CallInterceptor;

  // Calls in flight by context, sharded so that concurrent calls rarely share a lock.
  static constexpr int kShards = 16;
  struct Shard {
    absl::Mutex mu;
    absl::flat_hash_map<const grpc::ServerContextBase*, Call*> calls ABSL_GUARDED_BY(mu);
  };
  Shard& ShardOf(const grpc::ServerContextBase* context);
  void Register(const grpc::ServerContextBase* context, Call* call);
  void Unregister(const grpc::ServerContextBase* context);

  RpcMetrics* const rpc_metrics_;
  std::array<Shard, kShards> shards_;
};

}  // namespace outreach::server
