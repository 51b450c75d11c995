#include "server/server.h"

#include <chrono>
#include <utility>

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "grpc/health/v1/health.pb.h"

namespace outreach::server {
namespace {

// "host:port" with the port replaced by the one actually bound.
std::string WithPort(absl::string_view address, int port) {
  const std::size_t colon = address.rfind(':');
  if (colon == absl::string_view::npos) return absl::StrCat(address, ":", port);
  return absl::StrCat(address.substr(0, colon), ":", port);
}

}  // namespace

OutreachServer::OutreachServer(store::EventStore* store, std::string address)
    : task_service_(store), event_log_service_(store), address_(std::move(address)) {}

absl::StatusOr<std::unique_ptr<OutreachServer>> OutreachServer::Start(const ServerOptions& options,
                                                                      store::EventStore* store) {
  // Both are process-wide switches read when a server is built.
  grpc::EnableDefaultHealthCheckService(true);
  // gRPC serves health checks without protobuf's generated pool; touching the generated
  // descriptor registers grpc.health.v1 there, so that reflection can describe the service.
  grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  std::unique_ptr<OutreachServer> server(new OutreachServer(store, options.listen_address));
  grpc::ServerBuilder builder;
  int port = 0;
  // gRPC sets SO_REUSEPORT by default: a second outreachd on the same port would then start
  // "successfully" and split the traffic. A taken port must be a start-up error instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.AddListeningPort(options.listen_address, grpc::InsecureServerCredentials(), &port);
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  builder.SetMaxSendMessageSize(options.max_send_message_bytes);
  builder.RegisterService(&server->task_service_);
  builder.RegisterService(&server->event_log_service_);
  server->server_ = builder.BuildAndStart();
  if (server->server_ == nullptr || port == 0) {
    return absl::UnavailableError(
        absl::StrCat("listen: cannot serve on \"", options.listen_address, "\""));
  }
  server->port_ = port;
  server->address_ = WithPort(options.listen_address, port);
  server->SetServing(false);
  return server;
}

OutreachServer::~OutreachServer() { Shutdown(absl::Seconds(5)); }

void OutreachServer::SetServing(bool serving) {
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus(serving);  // "" and every registered name
  for (const char* name : kServiceNames) health->SetServingStatus(name, serving);
}

void OutreachServer::Shutdown(absl::Duration deadline) {
  if (shut_down_ || server_ == nullptr) return;
  shut_down_ = true;
  // Tells health watchers first, then refuses new calls and drains the rest.
  if (grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService()) {
    health->Shutdown();
  }
  server_->Shutdown(absl::ToChronoTime(absl::Now() + deadline));
  server_->Wait();
}

}  // namespace outreach::server
