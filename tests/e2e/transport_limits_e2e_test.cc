// Transport limits with the real outreachd binary (issue 11, items 4 and 5; issue 19's idle
// connections): what unauthenticated clients can make the process hold. Raw HTTP/2 clients
// (tests/server/raw_http2.h) open calls whose request bodies never complete, and connections
// that sit idle; outreachd's memory is read from /proc/PID/status and checked against the bound
// documented in README "Security" (Transport limits), while health keeps answering.
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "openssl/sha.h"
#include "outreach/v1/task_service.grpc.pb.h"
#include "tests/e2e/outreachd_process.h"
#include "tests/server/raw_http2.h"

namespace outreach {
namespace {

using ::outreach::testing::GrpcMessagePrefix;
using ::outreach::testing::ProcStatusKib;
using ::outreach::testing::RawHttp2;

// README "Security", Transport limits: outreachd's resident memory stays under this while
// unauthenticated clients hold incomplete requests (the default --grpc-memory-limit-mib, 256, for
// gRPC, plus the process and its RocksDB).
constexpr int64_t kRssBoundMib = 400;

std::string TokenSha256Hex(absl::string_view token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

class TransportLimitsE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "outreach_transport_e2e_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    port_ = e2e::FreePort();
    ASSERT_NE(port_, 0);
    principals_ = dir_ + "/principals";
    std::ofstream(principals_) << "alice admin " << TokenSha256Hex("alice-token") << "\n";
  }

  void TearDown() override {
    if (HasFailure() && daemon_ != nullptr) std::cerr << "--- outreachd log ---\n" << daemon_->Log();
    daemon_.reset();
    std::filesystem::remove_all(dir_);
  }

  void StartServing(std::vector<std::string> extra = {}) {
    extra.push_back("--principals=" + principals_);
    daemon_ = std::make_unique<e2e::Daemon>(dir_ + "/db", port_, dir_ + "/outreachd.log",
                                            std::move(extra));
    daemon_->Start();
    ASSERT_TRUE(daemon_->WaitServing()) << daemon_->Log();
  }

  int64_t RssMib() const { return ProcStatusKib(daemon_->pid(), "VmRSS") / 1024; }
  int64_t PeakRssMib() const { return ProcStatusKib(daemon_->pid(), "VmHWM") / 1024; }

  // A health check on a fresh connection, with a short deadline.
  grpc::StatusCode HealthCheck() const {
    auto stub = grpc::health::v1::Health::NewStub(e2e::Connect(daemon_->address()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::health::v1::HealthCheckResponse response;
    return stub->Check(&context, grpc::health::v1::HealthCheckRequest(), &response).error_code();
  }

  // An authenticated CreateTask on a fresh connection.
  grpc::StatusCode CreateTask(const std::string& task_id) const {
    auto stub = v1::TaskService::NewStub(e2e::Connect(daemon_->address()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    context.AddMetadata("authorization", "Bearer alice-token");
    v1::CreateTaskRequest request;
    request.set_task_id(task_id);
    request.set_patient_id("p-1");
    request.set_kind(v1::MANUAL);
    request.set_title("visit");
    v1::Task task;
    return stub->CreateTask(&context, request, &task).error_code();
  }

  std::string dir_;
  int port_ = 0;
  std::string principals_;
  std::unique_ptr<e2e::Daemon> daemon_;
};

// Many calls, none authenticated, each sending most of a 4 MiB request that never completes.
struct SlowUploads {
  std::vector<std::unique_ptr<RawHttp2>> connections;
  std::vector<std::vector<uint32_t>> streams;  // per connection
  std::size_t bytes_sent = 0;
  int64_t max_rss_mib = 0;
};

// Opens `connections` x `streams` CreateTask calls without a token, then sends their bodies round
// robin for at most `duration`, sampling RSS with `rss_mib` after each round.
template <typename RssFn>
SlowUploads HoldSlowUploads(int port, int connections, int streams, absl::Duration duration,
                            RssFn rss_mib) {
  constexpr uint32_t kAnnounced = (4 << 20) - 1024;  // under the 4 MiB message limit
  const std::string body = GrpcMessagePrefix(kAnnounced) + std::string(kAnnounced - 1, 'x');
  SlowUploads uploads;
  for (int c = 0; c < connections; ++c) {
    absl::StatusOr<std::unique_ptr<RawHttp2>> connection = RawHttp2::Connect(port);
    if (!connection.ok()) break;
    uploads.streams.emplace_back();
    for (int s = 0; s < streams; ++s) {
      absl::StatusOr<uint32_t> id = (*connection)->OpenStream("/outreach.v1.TaskService/CreateTask");
      if (id.ok()) uploads.streams.back().push_back(*id);
    }
    uploads.connections.push_back(*std::move(connection));
  }
  std::vector<std::vector<std::size_t>> offsets;
  for (const auto& ids : uploads.streams) offsets.emplace_back(ids.size(), 0);
  const absl::Time deadline = absl::Now() + duration;
  bool progress = true;
  while (progress && absl::Now() < deadline) {
    progress = false;
    for (std::size_t c = 0; c < uploads.connections.size(); ++c) {
      for (std::size_t s = 0; s < uploads.streams[c].size(); ++s) {
        std::size_t& offset = offsets[c][s];
        const std::size_t n = uploads.connections[c]->SendData(
            uploads.streams[c][s], absl::string_view(body).substr(offset, 256 << 10),
            absl::Milliseconds(5));
        offset += n;
        uploads.bytes_sent += n;
        if (n > 0) progress = true;
      }
    }
    uploads.max_rss_mib = std::max(uploads.max_rss_mib, rss_mib());
    if (!progress) {  // every window shut: wait once for updates before giving up
      for (auto& connection : uploads.connections) connection->Pump(absl::Milliseconds(200));
      progress = absl::Now() < deadline - absl::Seconds(1);
    }
  }
  return uploads;
}

TEST_F(TransportLimitsE2eTest, SlowUnauthenticatedUploadsStayUnderTheMemoryBoundAndHealthAnswers) {
  std::vector<std::string> extra;
  if (getenv("XMEM")) extra.push_back(std::string("--grpc-memory-limit-mib=") + getenv("XMEM"));
  StartServing(extra);
  const int64_t rss_before = RssMib();
  // Three connections of 100 calls (the stream limit): 1.2 GiB if every body were held.
  SlowUploads uploads =
      HoldSlowUploads(port_, 3, 100, absl::Seconds(15), [this] { return RssMib(); });
  const int64_t rss_during = RssMib();
  EXPECT_EQ(HealthCheck(), grpc::StatusCode::OK);
  std::size_t refused = 0;
  for (std::size_t c = 0; c < uploads.connections.size(); ++c) {
    uploads.connections[c]->Pump(absl::Milliseconds(100));
    for (uint32_t id : uploads.streams[c]) refused += uploads.connections[c]->Ended(id) ? 1 : 0;
  }
  const int64_t peak = PeakRssMib();
  uploads.connections.clear();
  absl::SleepFor(absl::Seconds(2));
  const int64_t rss_after = RssMib();
  std::cout << "slow uploads: sent " << (uploads.bytes_sent >> 20) << " MiB on "
            << uploads.streams.size() << " connections; outreachd RSS before " << rss_before
            << " MiB, max sampled " << uploads.max_rss_mib << " MiB, at the end " << rss_during
            << " MiB, peak (VmHWM) " << peak << " MiB, 2 s after closing " << rss_after
            << " MiB; calls ended by the server " << refused << "\n";
  EXPECT_LT(peak, kRssBoundMib);
  EXPECT_EQ(HealthCheck(), grpc::StatusCode::OK);
  EXPECT_EQ(CreateTask("after-the-flood"), grpc::StatusCode::OK);
}

}  // namespace
}  // namespace outreach
