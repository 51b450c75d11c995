// OutreachServer: the gRPC server that serves TaskService, PatientService, EventLog and
// AdminService over one EventStore, with gRPC health checking and server reflection.
//
// Security (README "Security"): ServerOptions::credentials (TLS or mTLS, see TlsCredentials, or
// plaintext), ServerOptions::principals (the principals file; nullptr = local-development mode).
// Every RPC is checked against the role table (server/auth.h) at the top of its handler
// (server/call_security.h), reflection included (server/reflection_service.h); health checking
// is open. Every read of patient data is recorded in the store's access log before its data is
// sent.
//
// Start() binds and starts serving with every health status NOT_SERVING, so that the caller can
// finish recovery (e.g. EventStore::ExpireDue) before calling SetServing(true). The store must
// outlive the server. Shutdown() (or the destructor) drains in-flight calls.
//
// Health (grpc.health.v1): SetServing sets "" and every name in kServiceNames, except that
// "outreach.v1.TaskService" (the service that writes) reports NOT_SERVING while the store refuses
// writes (EventStore::WriteHealth not OK): below the free-space reserve, or after a failed write
// for lack of space, until the store resumes by itself (then SERVING again); after any other
// failed write or sync, until the process is restarted on a healthy disk. "" and
// "outreach.v1.EventLog" keep reporting SERVING, because reads (GetTask, ListTasks, ReadEvents,
// VerifyLog) keep working. Nothing polls on the request path: a refused write flips health from
// the writer's callback before its call finishes, and a watcher thread re-checks WriteHealth
// every ServerOptions::write_health_poll, for writes that fail outside any call (the expiry
// closer), for the reserve, and to report SERVING again once writes resume. Each change is
// logged (logging/log.h) with the raw cause (store::ServerDetail: RocksDB's message, file paths);
// clients see only the refusal's words.
//
// ServerOptions::health_listen_address adds a plaintext listener with nothing but the health
// service, kept in step with the main one: every other call there is UNIMPLEMENTED.
//
// Read-only investigation (ServerOptions::read_only_investigation, over a store opened with
// EventStore::OpenReadOnly): every mutation is FAILED_PRECONDITION ("server started read-only for
// investigation") and "outreach.v1.TaskService" reports NOT_SERVING from the start, while reads,
// ReadEvents, SubscribeEvents, GetTaskHistory and VerifyLog are served.
//
// Shutdown first ends every open SubscribeEvents stream (UNAVAILABLE, naming the position to
// resubscribe from): those streams never end by themselves, and must not hold the drain until its
// deadline.
//
// SetServing and WritesRefused are thread-safe; Start, Shutdown and destruction belong to the
// owner's thread.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/admin_service.h"
#include "server/auth.h"
#include "server/call_observer.h"
#include "server/call_security.h"
#include "server/event_log_service.h"
#include "server/report_service.h"
#include "server/metrics.h"
#include "server/patient_service.h"
#include "server/refusal_log.h"
#include "server/task_service.h"
#include "store/event_store.h"

namespace outreach::server {

// What one client may make the server hold or do. Every limit is set explicitly on the
// ServerBuilder, so that a gRPC upgrade cannot change them silently.
struct ServerOptions {
  // host:port; port 0 picks a free port (see OutreachServer::port()).
  std::string listen_address = "127.0.0.1:50051";
  // Optional host:port of a second, plaintext listener that serves grpc.health.v1 only, with the
  // same statuses as the main one (see Health below): for probes that cannot speak TLS, such as
  // Kubernetes' gRPC probes, while the main port serves TLS. Empty: none.
  std::string health_listen_address;
  // A larger request fails with RESOURCE_EXHAUSTED before it is parsed (the largest valid
  // request, a LogContact with 4000 characters of notes, is far below). gRPC 1.51 checks this
  // only once the whole message has arrived, so it does not bound what a call holds while its
  // request is arriving: the memory quota below and the proxy in front (README "Security") do.
  int max_receive_message_bytes = 4 << 20;
  int max_send_message_bytes = 16 << 20;
  // HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: calls in flight per connection.
  int max_concurrent_streams = 100;
  // The server pings a connection idle for keepalive_time, and closes it if the ping is not
  // acknowledged within keepalive_timeout (dead clients, half-open connections).
  absl::Duration keepalive_time = absl::Minutes(1);
  absl::Duration keepalive_timeout = absl::Seconds(20);
  // Keepalive enforcement: a client ping that comes sooner than min_client_ping_interval after
  // the last one while no data flows, or any ping on a connection without calls, is a strike;
  // after max_ping_strikes the server closes the connection with GOAWAY "too_many_pings".
  absl::Duration min_client_ping_interval = absl::Seconds(10);
  int max_ping_strikes = 2;
  // What the whole server may hold for its connections and calls before a client is known: the
  // memory gRPC's transport charges to its ResourceQuota (read buffers, the bytes of requests
  // still being received, per-connection state). Near the limit gRPC first closes idle
  // connections, then cancels calls ("Buffers full", RESOURCE_EXHAUSTED), and shrinks the HTTP/2
  // flow-control windows it grants; RocksDB's memory is outside it (bounded by the store).
  std::size_t memory_quota_bytes = std::size_t{256} << 20;
  // Threads the ResourceQuota grants gRPC's synchronous-API thread pools (this server uses the
  // callback API, whose work runs on gRPC's own fixed executor; the cap is set so that a
  // synchronous service added later cannot grow threads without bound).
  int max_threads = 64;
  // HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE and gRPC's limit on a request's metadata: a call whose
  // headers are larger is refused (gRPC 1.51 still reads and decodes the whole header block
  // before refusing it: see README "Security", HTTP/2 floods).
  int max_metadata_bytes = 8 << 10;
  // A connection with no call in flight for this long is closed (GOAWAY; gRPC clients reconnect
  // on their next call): idle connections cannot accumulate.
  absl::Duration max_connection_idle = absl::Minutes(5);
  // Every connection is closed after max_connection_age (GOAWAY: no new calls on it), and calls
  // still running max_connection_age_grace later are cancelled. This bounds how long one
  // connection can hold anything, long-lived SubscribeEvents streams included (they end
  // UNAVAILABLE and resume from their last position).
  absl::Duration max_connection_age = absl::Hours(1);
  absl::Duration max_connection_age_grace = absl::Minutes(5);
  // A new connection must finish its TLS handshake and send the HTTP/2 preface and SETTINGS
  // within this, or it is closed.
  absl::Duration handshake_timeout = absl::Seconds(10);
  // How often the watcher re-checks EventStore::WriteHealth (see Health above). Zero: no
  // watcher; only refused TaskService calls change health, and it does not come back.
  absl::Duration write_health_poll = absl::Seconds(1);
  // Serve reads only, from a store opened read-only (see Read-only investigation above).
  bool read_only_investigation = false;
  // Transport security; nullptr = plaintext (outreachd allows it on loopback only, unless
  // --insecure-listen).
  std::shared_ptr<grpc::ServerCredentials> credentials;
  // The principals callers authenticate as; nullptr = local-development mode (every caller holds
  // every role, the actor is x-actor or "anonymous"). Must outlive the server.
  const PrincipalRegistry* principals = nullptr;
  // Where each RPC's code and duration are counted (server/metrics.h); nullptr = no metrics.
  // Every call is logged either way (server/call_observer.h). Must outlive the server.
  RpcMetrics* rpc_metrics = nullptr;
  // AdminService.CreateBackup (server/admin_service.h): the BackupEngine directory live backups
  // go to (empty: none), and how many of them are kept.
  std::string backup_dir;
  uint32_t backup_keep = 7;
  // PatientService.ErasePatient appends each erasure here (store/erasure_list.h; outreachd's
  // --erasure-list), outside the database, so that a restore re-applies it. Empty: not kept.
  std::string erasure_list;
};

// PEM contents for TLS: the server's certificate chain and key, and optionally the CA whose
// client certificates are required and verified (mTLS; empty = no client certificate asked).
struct TlsPem {
  std::string cert_chain;
  std::string private_key;
  std::string client_ca;
};
std::shared_ptr<grpc::ServerCredentials> TlsCredentials(const TlsPem& pem);

class OutreachServer {
 public:
  // The names whose health status SetServing sets, besides the overall "".
  static constexpr const char* kServiceNames[] = {"outreach.v1.TaskService",
                                                  "outreach.v1.EventLog"};
  // The one of them that writes, and so reports NOT_SERVING once writes are refused.
  static constexpr const char* kWritingService = "outreach.v1.TaskService";

  // UNAVAILABLE if the address cannot be bound.
  static absl::StatusOr<std::unique_ptr<OutreachServer>> Start(const ServerOptions& options,
                                                               store::EventStore* store);

  OutreachServer(const OutreachServer&) = delete;
  OutreachServer& operator=(const OutreachServer&) = delete;
  ~OutreachServer();

  // The bound port, and "host:port" with it (useful when listening on port 0).
  int port() const { return port_; }
  const std::string& address() const { return address_; }
  // The health-only listener's bound port (0 without ServerOptions::health_listen_address).
  int health_port() const { return health_port_; }

  // Calls refused by authentication or authorization, by reason (the refusals are also logged,
  // rate-limited: server/refusal_log.h).
  RefusalLog::Counts Refusals() const { return refusals_.counts(); }

  // SubscribeEvents streams not yet finished (for tests and diagnostics).
  std::size_t OpenSubscriptions() const { return event_log_service_.OpenSubscriptions(); }
  // Each subscribing consumer's lag behind `head` (server/subscribe_events.h).
  std::vector<SubscriptionHub::ConsumerLag> ConsumerLags(uint64_t head) const {
    return event_log_service_.ConsumerLags(head);
  }

  // Sets the health status of "" and of every service in kServiceNames (kWritingService stays
  // NOT_SERVING once writes are refused).
  void SetServing(bool serving) ABSL_LOCKS_EXCLUDED(mu_);

  // Records that the store refuses writes: kWritingService reports NOT_SERVING until a later
  // NoteWriteHealth(OK). Logs `why` (and its raw cause) to stderr when the reason changes.
  void WritesRefused(const absl::Status& why) ABSL_LOCKS_EXCLUDED(mu_);
  // Records EventStore::WriteHealth(): OK reports kWritingService SERVING again (if serving),
  // anything else as WritesRefused. Never SERVING in a read-only investigation.
  void NoteWriteHealth(const absl::Status& health) ABSL_LOCKS_EXCLUDED(mu_);

  // After the principals were reloaded (SIGHUP): open streams re-check their callers and end
  // with UNAUTHENTICATED / PERMISSION_DENIED if they were removed or lost the role. Thread-safe.
  void PrincipalsReloaded() { event_log_service_.RecheckSubscriptions(); }

  // Reports NOT_SERVING, ends open subscriptions, stops accepting calls, waits up to `deadline`
  // for in-flight calls and then cancels the rest. Idempotent.
  void Shutdown(absl::Duration deadline);

 private:
  OutreachServer(store::EventStore* store, const ServerOptions& options);

  // Pushes serving_ and writes_refused_ to gRPC's health service.
  void PublishHealth() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The watcher thread: re-checks WriteHealth every `poll` until stopping_.
  void WatchWriteHealth(absl::Duration poll) ABSL_LOCKS_EXCLUDED(mu_);
  void StopWatcher() ABSL_LOCKS_EXCLUDED(mu_);

  store::EventStore* const store_;
  const Authenticator authenticator_;
  RefusalLog refusals_;
  CallObserver call_observer_;
  const CallSecurity security_;
  TaskService task_service_;
  PatientService patient_service_;
  EventLogService event_log_service_;
  ReportService report_service_;
  AdminService admin_service_;
  std::unique_ptr<grpc::Service> reflection_v1alpha_;
  std::unique_ptr<grpc::Service> reflection_v1_;
  std::unique_ptr<grpc::Server> server_;
  grpc::CallbackGenericService health_fallback_;  // every method but health: UNIMPLEMENTED
  std::unique_ptr<grpc::Server> health_server_;  // health only; nullptr without the option
  int health_port_ = 0;
  std::string address_;
  int port_ = 0;
  bool shut_down_ = false;
  const bool read_only_investigation_;

  absl::Mutex mu_;
  bool serving_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status writes_refused_ ABSL_GUARDED_BY(mu_);  // OK while the store accepts writes
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;        // tells the watcher to return
  std::thread watcher_;
};

}  // namespace outreach::server
