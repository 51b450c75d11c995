// The standard services: gRPC health checking and server reflection (what grpcurl relies on).
#include <set>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "tests/testing/server_fixture.h"

namespace outreach::server::testing {
namespace {

using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::grpc::reflection::v1alpha::ServerReflection;
using ::grpc::reflection::v1alpha::ServerReflectionRequest;
using ::grpc::reflection::v1alpha::ServerReflectionResponse;
using ::testing::IsSupersetOf;

class StandardServicesTest : public ServerFixture {
 protected:
  HealthCheckResponse::ServingStatus Health(const std::string& service) {
    auto stub = grpc::health::v1::Health::NewStub(channel_);
    HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    grpc::Status status = stub->Check(Context().get(), request, &response);
    EXPECT_TRUE(status.ok()) << service << ": " << status.error_message();
    return response.status();
  }

  // One request/response exchange on the reflection stream.
  ServerReflectionResponse Reflect(const ServerReflectionRequest& request) {
    auto stub = ServerReflection::NewStub(channel_);
    auto context = Context();
    auto stream = stub->ServerReflectionInfo(context.get());
    EXPECT_TRUE(stream->Write(request));
    ServerReflectionResponse response;
    EXPECT_TRUE(stream->Read(&response));
    stream->WritesDone();
    grpc::Status status = stream->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }
};

TEST_F(StandardServicesTest, HealthIsServingForTheServerAndEachService) {
  EXPECT_EQ(Health(""), HealthCheckResponse::SERVING);
  EXPECT_EQ(Health("outreach.v1.TaskService"), HealthCheckResponse::SERVING);
  EXPECT_EQ(Health("outreach.v1.EventLog"), HealthCheckResponse::SERVING);
}

TEST_F(StandardServicesTest, HealthIsNotServingUntilRecoveryIsDone) {
  server_->SetServing(false);
  EXPECT_EQ(Health(""), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Health("outreach.v1.TaskService"), HealthCheckResponse::NOT_SERVING);
  server_->SetServing(true);
  EXPECT_EQ(Health(""), HealthCheckResponse::SERVING);
}

TEST_F(StandardServicesTest, ANewServerStartsNotServing) {
  ServerOptions options;
  options.listen_address = "127.0.0.1:0";
  absl::StatusOr<std::unique_ptr<OutreachServer>> second =
      OutreachServer::Start(options, store_.get());
  ASSERT_TRUE(second.ok()) << second.status();
  auto channel = grpc::CreateChannel((*second)->address(), grpc::InsecureChannelCredentials());
  auto stub = grpc::health::v1::Health::NewStub(channel);
  HealthCheckResponse response;
  ASSERT_TRUE(stub->Check(Context().get(), HealthCheckRequest(), &response).ok());
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
}

TEST_F(StandardServicesTest, ListeningOnATakenPortIsUnavailable) {
  ServerOptions options;
  options.listen_address = server_->address();
  absl::StatusOr<std::unique_ptr<OutreachServer>> second =
      OutreachServer::Start(options, store_.get());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(StandardServicesTest, ReflectionListsTheServices) {
  ServerReflectionRequest request;
  request.set_list_services("");
  ServerReflectionResponse response = Reflect(request);
  ASSERT_TRUE(response.has_list_services_response()) << response.DebugString();
  std::set<std::string> names;
  for (const auto& service : response.list_services_response().service()) {
    names.insert(service.name());
  }
  EXPECT_THAT(names, IsSupersetOf({"outreach.v1.TaskService", "outreach.v1.EventLog",
                                   "grpc.health.v1.Health"}));
}

TEST_F(StandardServicesTest, ReflectionDescribesTheApiForJsonClients) {
  ServerReflectionRequest request;
  request.set_file_containing_symbol("outreach.v1.TaskService");
  ServerReflectionResponse response = Reflect(request);
  ASSERT_TRUE(response.has_file_descriptor_response()) << response.DebugString();
  EXPECT_GE(response.file_descriptor_response().file_descriptor_proto_size(), 1);
}

}  // namespace
}  // namespace outreach::server::testing
