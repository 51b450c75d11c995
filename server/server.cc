#include "server/server.h"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/resource_quota.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "grpc/health/v1/health.pb.h"
#include "logging/log.h"
#include "server/reflection_service.h"
#include "store/write_refusal.h"

namespace outreach::server {
namespace {

// "host:port" with the port replaced by the one actually bound.
std::string WithPort(absl::string_view address, int port) {
  const std::size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) return absl::StrCat(address, ":", port);
  return absl::StrCat(address.substr(0, colon), ":", port);
}

// A refusal's reason: its message up to the first ':' ("disk almost full", "disk full").
absl::string_view Reason(absl::string_view message) {
  return message.substr(0, message.find(':'));
}

// gRPC's channel arguments take int milliseconds, where INT_MAX means "no limit".
int Millis(absl::Duration d) {
  return static_cast<int>(
      std::min<int64_t>(absl::ToInt64Milliseconds(d), std::numeric_limits<int>::max()));
}

// What reflection's list_services reports: every service this server serves.
std::vector<std::string> ReflectedServices() {
  return {"outreach.v1.TaskService", "outreach.v1.PatientService", "outreach.v1.EventLog",
          "outreach.v1.ReportService", "outreach.v1.AdminService",
          "grpc.health.v1.Health",
          "grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection"};
}

// Every limit of ServerOptions, set explicitly (see ServerOptions for what each bounds).
void SetLimits(const ServerOptions& options, grpc::ServerBuilder* builder) {
  grpc::ResourceQuota quota("outreachd");
  quota.Resize(options.memory_quota_bytes);
  quota.SetMaxThreads(options.max_threads);
  builder->SetResourceQuota(quota);  // the builder keeps its own reference
  builder->SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  builder->SetMaxSendMessageSize(options.max_send_message_bytes);
  builder->AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, options.max_concurrent_streams);
  builder->AddChannelArgument(GRPC_ARG_MAX_METADATA_SIZE, options.max_metadata_bytes);
  builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                              Millis(options.max_connection_idle));
  builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, Millis(options.max_connection_age));
  builder->AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
                              Millis(options.max_connection_age_grace));
  builder->AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                              Millis(options.handshake_timeout));
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, Millis(options.keepalive_time));
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, Millis(options.keepalive_timeout));
  // Neither side pings a connection that has no calls: such a client ping is a strike.
  builder->AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
                              Millis(options.min_client_ping_interval));
  builder->AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, options.max_ping_strikes);
}

// The health-only listener: a server with no service of ours, so that gRPC's default health
// service is all it serves; `fallback` (gRPC's generic service, which answers every other method
// UNIMPLEMENTED) makes it a callback server, which needs no completion queue of ours.
// Plaintext: it says only whether the server is serving.
absl::StatusOr<std::unique_ptr<grpc::Server>> StartHealthServer(
    const std::string& address, grpc::CallbackGenericService* fallback, int* port) {
  grpc::ServerBuilder builder;
  builder.RegisterCallbackGenericService(fallback);
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), port);
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, 8);
  builder.SetMaxReceiveMessageSize(4 << 10);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || *port == 0) {
    return absl::UnavailableError(
        absl::StrCat("health listen: cannot serve on \"", address, "\""));
  }
  return server;
}

}  // namespace

std::shared_ptr<grpc::ServerCredentials> TlsCredentials(const TlsPem& pem) {
  const bool mtls = !pem.client_ca.empty();
  grpc::SslServerCredentialsOptions options(
      mtls ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
           : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  options.pem_key_cert_pairs.push_back({pem.private_key, pem.cert_chain});
  if (mtls) options.pem_root_certs = pem.client_ca;
  return grpc::SslServerCredentials(options);
}

OutreachServer::OutreachServer(store::EventStore* store, const ServerOptions& options)
    : store_(store),
      authenticator_(options.principals),
      call_observer_(options.rpc_metrics),
      // A read-only investigation cannot write access records (see CallSecurity).
      security_(&authenticator_, options.read_only_investigation ? nullptr : store->access_log(),
                &refusals_, &call_observer_),
      task_service_(
          store, &security_,
          TaskService::Options{
              .on_writes_refused = [this](const absl::Status& why) { WritesRefused(why); },
              .read_only_investigation = options.read_only_investigation}),
      patient_service_(
          store, &security_,
          TaskService::Options{
              .on_writes_refused = [this](const absl::Status& why) { WritesRefused(why); },
              .read_only_investigation = options.read_only_investigation},
          options.erasure_list),
      event_log_service_(store, &security_),
      report_service_(store, &security_),
      admin_service_(store, &security_,
                     AdminService::Options{.backup_dir = options.backup_dir,
                                           .backup_keep = options.backup_keep}),
      reflection_v1alpha_(NewReflectionV1alpha(&security_, ReflectedServices())),
      reflection_v1_(NewReflectionV1(&security_, ReflectedServices())),
      address_(options.listen_address),
      read_only_investigation_(options.read_only_investigation) {
  if (options.read_only_investigation) {
    // Before the first PublishHealth: the writing service never reports SERVING.
    absl::MutexLock lock(&mu_);
    writes_refused_ = absl::FailedPreconditionError(kReadOnlyInvestigation);
  }
}

absl::StatusOr<std::unique_ptr<OutreachServer>> OutreachServer::Start(const ServerOptions& options,
                                                                      store::EventStore* store) {
  // A process-wide switch read when a server is built.
  grpc::EnableDefaultHealthCheckService(true);
  // gRPC serves health checks without protobuf's generated pool; touching the generated
  // descriptor registers grpc.health.v1 there, so that reflection can describe the service.
  grpc::health::v1::HealthCheckRequest::descriptor();

  std::unique_ptr<OutreachServer> server(new OutreachServer(store, options));
  grpc::ServerBuilder builder;
  int port = 0;
  // gRPC sets SO_REUSEPORT by default: a second outreachd on the same port would then start
  // "successfully" and split the traffic. A taken port must be a start-up error instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(
      options.listen_address,
      options.credentials != nullptr ? options.credentials : grpc::InsecureServerCredentials(),
      &port);
  SetLimits(options, &builder);
  // Every call's request log line and metrics (server/call_observer.h).
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> observers;
  observers.push_back(server->call_observer_.NewFactory());
  builder.experimental().SetInterceptorCreators(std::move(observers));
  builder.RegisterService(&server->task_service_);
  builder.RegisterService(&server->patient_service_);
  builder.RegisterService(&server->event_log_service_);
  builder.RegisterService(&server->report_service_);
  builder.RegisterService(&server->admin_service_);
  builder.RegisterService(server->reflection_v1alpha_.get());
  builder.RegisterService(server->reflection_v1_.get());
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || port == 0) {
    return absl::UnavailableError(
        absl::StrCat("listen: cannot serve on \"", options.listen_address, "\""));
  }
  server->port_ = port;
  server->address_ = WithPort(options.listen_address, port);
  if (!options.health_listen_address.empty()) {
    absl::StatusOr<std::unique_ptr<grpc::Server>> health =
        StartHealthServer(options.health_listen_address, &server->health_fallback_,
                          &server->health_port_);
    if (!health.ok()) return health.status();
    server->health_server_ = *std::move(health);
  }
  server->SetServing(false);
  if (options.write_health_poll > absl::ZeroDuration()) {
    OutreachServer* self = server.get();
    const absl::Duration poll = options.write_health_poll;
    server->watcher_ = std::thread([self, poll] { self->WatchWriteHealth(poll); });
  }
  return server;
}

OutreachServer::~OutreachServer() { Shutdown(absl::Seconds(5)); }

void OutreachServer::SetServing(bool serving) {
  // Outside mu_: it may take the store's lock, and a refused write calls WritesRefused.
  NoteWriteHealth(store_->WriteHealth());
  absl::MutexLock lock(&mu_);
  serving_ = serving;
  PublishHealth();
}

void OutreachServer::WritesRefused(const absl::Status& why) {
  NoteWriteHealth(why.ok() ? absl::UnavailableError("writes refused") : why);
}

void OutreachServer::NoteWriteHealth(const absl::Status& health) {
  absl::MutexLock lock(&mu_);
  if (read_only_investigation_) return;  // never SERVING for writes
  // Logged when writes stop or start, or the reason changes ("disk almost full" -> "disk
  // full"); not on every poll while the free-space figures in the message move.
  const bool changed = health.ok() != writes_refused_.ok() ||
                       Reason(health.message()) != Reason(writes_refused_.message());
  if (!changed) return;
  if (health.ok()) {
    logging::Info(absl::StrFormat("%s reports SERVING again: the store accepts writes",
                                  kWritingService));
  } else {
    logging::Error(absl::StrFormat("%s reports NOT_SERVING: the store refuses writes: %s "
                                   "(cause: %s)",
                                   kWritingService, health.message(),
                                   store::ServerDetail(health)));
  }
  writes_refused_ = health;
  PublishHealth();
}

void OutreachServer::PublishHealth() {
  for (grpc::Server* server : {server_.get(), health_server_.get()}) {
    grpc::HealthCheckServiceInterface* health =
        server == nullptr ? nullptr : server->GetHealthCheckService();
    if (health == nullptr) continue;  // (After Shutdown gRPC ignores these calls.)
    health->SetServingStatus(serving_);  // "" and every registered name
    for (const char* name : kServiceNames) {
      const bool writes = absl::string_view(name) == kWritingService;
      health->SetServingStatus(name, serving_ && (!writes || writes_refused_.ok()));
    }
  }
}

void OutreachServer::WatchWriteHealth(absl::Duration poll) {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithTimeout(absl::Condition(&stopping_), poll);
      if (stopping_) return;
    }
    NoteWriteHealth(store_->WriteHealth());
  }
}

void OutreachServer::StopWatcher() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (watcher_.joinable()) watcher_.join();
}

void OutreachServer::Shutdown(absl::Duration deadline) {
  StopWatcher();
  if (shut_down_ || server_ == nullptr) return;
  shut_down_ = true;
  // Tells health watchers first, then ends the subscriptions, refuses new calls and drains the
  // rest.
  if (grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService()) {
    health->Shutdown();
  }
  // Subscriptions never end by themselves: end them now rather than at the deadline.
  event_log_service_.StopSubscriptions();
  if (health_server_ != nullptr) {
    if (grpc::HealthCheckServiceInterface* health = health_server_->GetHealthCheckService()) {
      health->Shutdown();
    }
  }
  server_->Shutdown(absl::ToChronoTime(absl::Now() + deadline));
  server_->Wait();
  if (health_server_ != nullptr) health_server_->Shutdown(absl::ToChronoTime(absl::Now()));
}

}  // namespace outreach::server
