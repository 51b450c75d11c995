// Transport limits with the real outreachd binary (issue 11, items 4 and 5; issue 19's idle
// connections): what unauthenticated clients can make the process hold. Raw HTTP/2 clients
// (tests/server/raw_http2.h) open calls whose request bodies never complete, and connections
// that sit idle; outreachd's memory is read from /proc/PID/status and checked against the bound
// documented in README "Security" (Transport limits), while health keeps answering.
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

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
#include "tests/e2e/nginx_process.h"
#include "tests/e2e/outreachd_process.h"
#include "tests/server/raw_http2.h"

namespace outreach {
namespace {

using ::outreach::testing::GrpcMessagePrefix;
using ::outreach::testing::ProcStatusKib;
using ::outreach::testing::RawHttp2;

// README "Security", Transport limits: behind the proxy, outreachd's resident memory stays under
// this while unauthenticated clients hold incomplete requests.
constexpr int64_t kRssBoundMib = 150;

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
    std::ofstream(principals_) << "alice admin " << TokenSha256Hex("alice-token-0123456789abcdef")
                               << "\n";
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

  // A CreateTask on a fresh connection to `address` with `token` (none if empty).
  grpc::StatusCode CreateTask(const std::string& task_id, const std::string& address,
                              const std::string& token = "alice-token-0123456789abcdef") const {
    auto stub = v1::TaskService::NewStub(e2e::Connect(address));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!token.empty()) context.AddMetadata("authorization", "Bearer " + token);
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

// Counts the slow-upload calls the server (or the proxy) has ended.
std::size_t EndedCalls(SlowUploads& uploads) {
  std::size_t ended = 0;
  for (std::size_t c = 0; c < uploads.connections.size(); ++c) {
    uploads.connections[c]->Pump(absl::Milliseconds(100));
    for (uint32_t id : uploads.streams[c]) ended += uploads.connections[c]->Ended(id) ? 1 : 0;
  }
  return ended;
}

// outreachd alone (no proxy): gRPC 1.51 buffers each request until it is complete, so 3 x 100
// calls of 4 MiB could hold 1.2 GiB. gRPC ends some of the calls; health keeps answering and a
// real call still works. The RSS reached is printed, not asserted: the memory quota does not
// bound it measurably in 1.51 (README "Security", Transport limits, gives the measured range);
// the bound is asserted behind the proxy below.
TEST_F(TransportLimitsE2eTest, SlowUnauthenticatedUploadsAreEndedAtTheMemoryQuotaAndHealthAnswers) {
  StartServing();
  const int64_t rss_before = RssMib();
  SlowUploads uploads =
      HoldSlowUploads(port_, 3, 100, absl::Seconds(15), [this] { return RssMib(); });
  EXPECT_EQ(HealthCheck(), grpc::StatusCode::OK);
  const std::size_t ended = EndedCalls(uploads);
  const int64_t peak = PeakRssMib();
  uploads.connections.clear();
  absl::SleepFor(absl::Seconds(2));
  std::cout << "slow uploads, direct: sent " << (uploads.bytes_sent >> 20) << " MiB; outreachd RSS "
            << rss_before << " MiB before, peak " << peak << " MiB, " << RssMib()
            << " MiB 2 s after closing; calls ended by the server " << ended << " of 300\n";
  // On a loaded machine the uploads may not reach the quota in the time given; only then may
  // no call have been ended.
  if (uploads.bytes_sent >= (512u << 20)) {
    EXPECT_GT(ended, 0u) << "no call was ended: nothing bounds what they hold";
  }
  EXPECT_EQ(HealthCheck(), grpc::StatusCode::OK);
  EXPECT_EQ(CreateTask("after-the-flood", daemon_->address()), grpc::StatusCode::OK);
}

// Issue 19: idle connections are closed after --max-connection-idle; the server stays up.
TEST_F(TransportLimitsE2eTest, IdleConnectionsAreClosedAfterMaxConnectionIdle) {
  StartServing({"--max-connection-idle=1s"});
  std::vector<std::unique_ptr<RawHttp2>> idle;
  for (int i = 0; i < 200; ++i) {
    absl::StatusOr<std::unique_ptr<RawHttp2>> connection = RawHttp2::Connect(port_);
    ASSERT_TRUE(connection.ok()) << connection.status();
    idle.push_back(*std::move(connection));
  }
  EXPECT_EQ(HealthCheck(), grpc::StatusCode::OK);
  const absl::Time deadline = absl::Now() + absl::Seconds(20);
  std::size_t goaway = 0;
  while (absl::Now() < deadline && goaway < idle.size()) {
    goaway = 0;
    for (auto& connection : idle) {
      connection->Pump(absl::Milliseconds(1));
      goaway += connection->got_goaway() || connection->closed() ? 1 : 0;
    }
  }
  EXPECT_EQ(goaway, idle.size());
  EXPECT_EQ(HealthCheck(), grpc::StatusCode::OK);
}

// --- Behind nginx (deploy/nginx/outreach-grpc.conf) ---------------------------------------------

class BehindNginxE2eTest : public TransportLimitsE2eTest {
 protected:
  void SetUp() override {
    TransportLimitsE2eTest::SetUp();
    if (::testing::Test::HasFatalFailure()) return;
    ASSERT_EQ(access(e2e::kNginxPath, X_OK), 0) << e2e::kNginxPath << ": run deploy/install-deps.sh";
    StartServing();
    ASSERT_TRUE(std::filesystem::create_directory(dir_ + "/nginx"));
    const int nginx_port = e2e::FreePort();
    ASSERT_NE(nginx_port, 0);
    nginx_ = std::make_unique<e2e::NginxProxy>(dir_ + "/nginx", nginx_port, daemon_->address());
    std::string why;
    ASSERT_TRUE(nginx_->Start(&why)) << why;
  }
  void TearDown() override {
    if (HasFailure() && nginx_ != nullptr) std::cerr << "--- nginx error.log ---\n" << nginx_->ErrorLog();
    nginx_.reset();
    TransportLimitsE2eTest::TearDown();
  }

  std::unique_ptr<e2e::NginxProxy> nginx_;
};

TEST_F(BehindNginxE2eTest, CreateTaskAndGetTaskWorkThroughTheProxyWithExactCodes) {
  EXPECT_EQ(CreateTask("t1", nginx_->address()), grpc::StatusCode::OK);
  EXPECT_EQ(CreateTask("t1", nginx_->address()), grpc::StatusCode::ALREADY_EXISTS);
  EXPECT_EQ(CreateTask("t2", nginx_->address(), ""), grpc::StatusCode::UNAUTHENTICATED);
  auto stub = v1::TaskService::NewStub(e2e::Connect(nginx_->address()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  context.AddMetadata("authorization", "Bearer alice-token-0123456789abcdef");
  v1::GetTaskRequest request;
  request.set_task_id("t1");
  v1::Task task;
  ASSERT_TRUE(stub->GetTask(&context, request, &task).ok());
  EXPECT_EQ(task.task_id(), "t1");
  EXPECT_EQ(task.status(), v1::OPEN);
}

// Item 4 behind the proxy: nginx ends each body at client_max_body_size and streams the rest to
// outreachd unbuffered, so outreachd's RSS stays under the documented bound.
TEST_F(BehindNginxE2eTest, SlowUnauthenticatedUploadsKeepOutreachdUnderTheRssBound) {
  const int64_t rss_before = RssMib();
  SlowUploads uploads =
      HoldSlowUploads(nginx_->port(), 3, 100, absl::Seconds(15), [this] { return RssMib(); });
  EXPECT_EQ(HealthCheck(), grpc::StatusCode::OK);
  const std::size_t ended = EndedCalls(uploads);
  const int64_t peak = PeakRssMib();
  std::cout << "slow uploads through nginx: sent " << (uploads.bytes_sent >> 20)
            << " MiB; outreachd RSS " << rss_before << " MiB before, peak " << peak
            << " MiB; nginx RSS " << ProcStatusKib(nginx_->pid(), "VmHWM") / 1024
            << " MiB (master); calls ended " << ended << " of 300\n";
  EXPECT_LT(peak, kRssBoundMib);
  uploads.connections.clear();
  EXPECT_EQ(CreateTask("after-the-flood", nginx_->address()), grpc::StatusCode::OK);
}

// Item 5: a 16 MiB header block (the advertised limit is 8 KiB). nginx closes the connection
// long before it has read it all; outreachd alone reads all of it (printed for README).
TEST_F(BehindNginxE2eTest, OversizedHeaderBlockIsRefusedByTheProxy) {
  const RawHttp2::Headers flood = {{"x-flood", std::string(16 << 20, 'h')}};
  absl::StatusOr<std::unique_ptr<RawHttp2>> direct = RawHttp2::Connect(port_);
  ASSERT_TRUE(direct.ok());
  const absl::Time start = absl::Now();
  absl::StatusOr<uint32_t> direct_stream =
      (*direct)->OpenStream("/outreach.v1.TaskService/CreateTask", flood, absl::Seconds(10));
  (*direct)->Pump(absl::Milliseconds(500));
  std::cout << "16 MiB header block, direct to outreachd: " << (*direct)->header_bytes_written()
            << " bytes accepted in " << absl::ToDoubleSeconds(absl::Now() - start) << " s; "
            << "advertised SETTINGS_MAX_HEADER_LIST_SIZE "
            << (*direct)->peer_settings().count(0x6) << "="
            << ((*direct)->peer_settings().count(0x6) ? (*direct)->peer_settings().at(0x6) : 0)
            << "; stream ended " << (direct_stream.ok() && (*direct)->Ended(*direct_stream))
            << ", goaway " << (*direct)->got_goaway() << "\n";

  absl::StatusOr<std::unique_ptr<RawHttp2>> proxied = RawHttp2::Connect(nginx_->port());
  ASSERT_TRUE(proxied.ok());
  // (Its result, whether the whole block was written, is not what the test is about: below.)
  (*proxied)
      ->OpenStream("/outreach.v1.TaskService/CreateTask", flood, absl::Seconds(10))
      .IgnoreError();
  (*proxied)->Pump(absl::Milliseconds(500));
  std::cout << "16 MiB header block, through nginx: " << (*proxied)->header_bytes_written()
            << " bytes written before the refusal; goaway " << (*proxied)->got_goaway()
            << " (code " << (*proxied)->goaway_code() << "), closed " << (*proxied)->closed()
            << "\n";
  // Whether the client's write of the whole block completes depends on how much the loopback
  // socket buffers absorb before nginx closes; the refusal is what matters.
  EXPECT_TRUE((*proxied)->got_goaway() || (*proxied)->closed())
      << "nginx kept a connection that sent a 16 MiB header block";
  EXPECT_EQ(HealthCheck(), grpc::StatusCode::OK);
}

// Item 5: HEADERS + RST_STREAM as fast as the socket takes them. nginx (with the CVE-2023-44487
// fix) closes the connection; outreachd behind it stays responsive. The same flood sent to
// outreachd directly is measured and printed (gRPC 1.51 has no defence of its own).
TEST_F(BehindNginxE2eTest, RapidResetFloodIsCutOffByTheProxy) {
  constexpr int kStreams = 50000;
  const absl::Duration cpu_before = testing::ProcCpuTime(daemon_->pid());
  absl::StatusOr<std::unique_ptr<RawHttp2>> proxied = RawHttp2::Connect(nginx_->port());
  ASSERT_TRUE(proxied.ok());
  const int through_nginx =
      (*proxied)->RapidReset("/outreach.v1.TaskService/GetTask", kStreams, absl::Seconds(10));
  (*proxied)->Pump(absl::Milliseconds(500));
  const absl::Duration cpu_nginx = testing::ProcCpuTime(daemon_->pid()) - cpu_before;
  std::cout << "rapid reset through nginx: " << through_nginx << " of " << kStreams
            << " HEADERS+RST_STREAM pairs written before nginx closed; goaway "
            << (*proxied)->got_goaway() << ", closed " << (*proxied)->closed()
            << "; outreachd CPU " << absl::ToDoubleSeconds(cpu_nginx) << " s\n";
  EXPECT_LT(through_nginx, kStreams) << "nginx took the whole flood";
  EXPECT_TRUE((*proxied)->got_goaway() || (*proxied)->closed());

  const int64_t rss_before = RssMib();
  const absl::Time start = absl::Now();
  absl::StatusOr<std::unique_ptr<RawHttp2>> direct = RawHttp2::Connect(port_);
  ASSERT_TRUE(direct.ok());
  const int direct_pairs =
      (*direct)->RapidReset("/outreach.v1.TaskService/GetTask", kStreams, absl::Seconds(10));
  (*direct)->Pump(absl::Milliseconds(500));
  std::cout << "rapid reset direct to outreachd: " << direct_pairs << " pairs in "
            << absl::ToDoubleSeconds(absl::Now() - start) << " s; goaway "
            << (*direct)->got_goaway() << "; outreachd CPU "
            << absl::ToDoubleSeconds(testing::ProcCpuTime(daemon_->pid()) - cpu_before - cpu_nginx)
            << " s, RSS " << rss_before << " -> " << RssMib() << " MiB\n";
  EXPECT_EQ(HealthCheck(), grpc::StatusCode::OK);
  EXPECT_EQ(CreateTask("after-the-flood", nginx_->address()), grpc::StatusCode::OK);
}

// The connection cap (worker_connections, issue 19): at the cap nginx 1.22 closes idle client
// connections to make room ("worker_connections are not enough, reusing connections"), and a
// new connection is closed at once when none is idle; so no more than the cap stay open, the
// idle ones go first, outreachd never sees them, and new clients still get in.
TEST_F(BehindNginxE2eTest, ConnectionsBeyondTheCapAreClosedAtOnce) {
  rlimit files{};
  getrlimit(RLIMIT_NOFILE, &files);
  files.rlim_cur = files.rlim_max;
  setrlimit(RLIMIT_NOFILE, &files);
  if (files.rlim_cur < 1400) GTEST_SKIP() << "RLIMIT_NOFILE " << files.rlim_cur << " < 1400";
  std::vector<std::unique_ptr<RawHttp2>> connections;
  for (int i = 0; i < 1100; ++i) {
    absl::StatusOr<std::unique_ptr<RawHttp2>> connection = RawHttp2::Connect(nginx_->port());
    if (connection.ok()) connections.push_back(*std::move(connection));
  }
  std::size_t served = 0;
  std::size_t closed = 0;
  for (auto& connection : connections) {
    connection->Pump(absl::Milliseconds(2));
    if (!connection->peer_settings().empty()) ++served;
    if (connection->closed()) ++closed;
  }
  std::cout << "1100 idle connections to nginx: " << served << " got SETTINGS, " << closed
            << " closed by nginx\n";
  EXPECT_LE(connections.size() - closed, 1024u);
  EXPECT_GT(closed, 0u);
  EXPECT_EQ(HealthCheck(), grpc::StatusCode::OK);
  connections.clear();
  absl::SleepFor(absl::Milliseconds(500));
  EXPECT_EQ(CreateTask("after-the-crowd", nginx_->address()), grpc::StatusCode::OK);
}

}  // namespace
}  // namespace outreach
