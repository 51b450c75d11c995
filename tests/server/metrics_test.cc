// outreachd's metrics (server/metrics.h) in-process: an OutreachServer whose calls and store
// are bound to a Metrics exposer on a free port, scraped over HTTP like Prometheus does, with
// exact values for what the test did.
#include "server/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "tests/testing/server_fixture.h"

namespace outreach::server {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// GET http://`address`/metrics (HTTP/1.0: the server closes after the response); the body.
std::string Scrape(const std::string& address) {
  const std::size_t colon = address.rfind(':');
  const int port = std::stoi(address.substr(colon + 1));
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buffer[8192];
      ssize_t n = 0;
      while ((n = read(fd, buffer, sizeof(buffer))) > 0) response.append(buffer, n);
    }
  }
  close(fd);
  const std::size_t body = response.find("\r\n\r\n");
  return body == std::string::npos ? "" : response.substr(body + 4);
}

// The value of the sample `series` (name and labels exactly as exposed), or -1 if absent.
double Sample(const std::string& scrape, const std::string& series) {
  for (absl::string_view line : absl::StrSplit(scrape, '\n')) {
    if (line.size() > series.size() && line.substr(0, series.size()) == series &&
        line[series.size()] == ' ') {
      double value = 0;
      if (absl::SimpleAtod(line.substr(series.size() + 1), &value)) return value;
    }
  }
  return -1;
}

class MetricsTest : public testing::ServerFixture {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<Metrics>> metrics = Metrics::Start("127.0.0.1:0", dir_);
    ASSERT_TRUE(metrics.ok()) << metrics.status();
    metrics_ = *std::move(metrics);
    store::StoreOptions store_options = TestStoreOptions();
    store_options.observer = metrics_->store_observer();
    ASSERT_NO_FATAL_FAILURE(OpenStore(store_options));
    ServerOptions options;
    options.rpc_metrics = metrics_->rpc();
    ASSERT_NO_FATAL_FAILURE(StartServer(options));
    metrics_->Watch(store_.get(), server_.get());
  }

  void TearDown() override {
    metrics_->Unwatch();
    ServerFixture::TearDown();
    metrics_.reset();
  }

  std::string Scrape() { return server::Scrape(metrics_->address()); }

  std::unique_ptr<Metrics> metrics_;
};

TEST_F(MetricsTest, EachCallIsCountedByMethodAndExactCode) {
  v1::Task task;
  ASSERT_TRUE(Create(ManualRequest("m1"), &task).ok());
  EXPECT_EQ(Get("absent", &task).error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(Get("absent", &task).error_code(), grpc::StatusCode::NOT_FOUND);
  v1::LogContactRequest no_date;
  no_date.set_task_id("m1");
  no_date.set_outcome(v1::NO_ANSWER);
  EXPECT_EQ(Log(no_date, &task).error_code(), grpc::StatusCode::INVALID_ARGUMENT);

  const std::string scrape = Scrape();
  const std::string get = "method=\"/outreach.v1.TaskService/GetTask\"";
  EXPECT_EQ(Sample(scrape, "outreach_rpc_requests_total{code=\"NOT_FOUND\"," + get + "}"), 2);
  EXPECT_EQ(Sample(scrape, "outreach_rpc_duration_seconds_count{code=\"NOT_FOUND\"," + get + "}"),
            2);
  EXPECT_EQ(Sample(scrape, "outreach_rpc_requests_total{code=\"OK\",method=\"/outreach.v1."
                           "TaskService/CreateTask\"}"),
            1);
  EXPECT_EQ(Sample(scrape, "outreach_rpc_requests_total{code=\"INVALID_ARGUMENT\",method=\"/"
                           "outreach.v1.TaskService/LogContact\"}"),
            1);
  // A code a method never returned has no series.
  EXPECT_EQ(Sample(scrape, "outreach_rpc_requests_total{code=\"OK\"," + get + "}"), -1);
  EXPECT_THAT(scrape, Not(HasSubstr("patient-1")));
}

TEST_F(MetricsTest, TheWritePathAndTheStoreLevelsAreScraped) {
  v1::Task task;
  ASSERT_TRUE(Create(ManualRequest("m1"), &task).ok());
  ASSERT_TRUE(Create(ManualRequest("m2"), &task).ok());
  // An automatic task whose expires_at (on the fixture's fake clock, in 2025) is long past by
  // the wall clock the scrape counts with; no expiry scheduler runs here to close it.
  ASSERT_TRUE(Create(AutomaticRequest("a1", absl::Hours(1)), &task).ok());

  const std::string scrape = Scrape();
  EXPECT_EQ(Sample(scrape, "outreach_writer_batch_commands_sum"), 3);
  EXPECT_EQ(Sample(scrape, "outreach_writer_commit_seconds_count"),
            Sample(scrape, "outreach_writer_batch_commands_count"));
  EXPECT_EQ(Sample(scrape, "outreach_log_head_position"), 3);
  EXPECT_EQ(Sample(scrape, "outreach_writer_queue_depth"), 0);
  EXPECT_EQ(Sample(scrape, "outreach_writer_refused_commands_total"), 0);
  EXPECT_EQ(Sample(scrape, "outreach_writes_refused"), 0);
  EXPECT_EQ(Sample(scrape, "outreach_open_tasks{kind=\"MANUAL\"}"), 2);
  EXPECT_EQ(Sample(scrape, "outreach_open_tasks{kind=\"AUTOMATIC\"}"), 1);
  EXPECT_EQ(Sample(scrape, "outreach_expiry_due_tasks"), 1);
  EXPECT_GT(Sample(scrape, "outreach_rocksdb_memtable_bytes"), 0);
  EXPECT_GT(Sample(scrape, "process_resident_memory_bytes"), 0);
  EXPECT_GT(Sample(scrape, "outreach_db_filesystem_size_bytes"), 0);
  EXPECT_THAT(scrape, HasSubstr("outreach_build_info{version=\""));
}

TEST_F(MetricsTest, ACaughtUpSubscriberHasNoLagAndItsStreamIsCounted) {
  v1::Task task;
  ASSERT_TRUE(Create(ManualRequest("m1"), &task).ok());
  ASSERT_TRUE(Create(ManualRequest("m2"), &task).ok());
  auto context = Context("audit.svc");
  v1::SubscribeEventsRequest request;
  request.set_from_position(1);
  auto stream = events_->SubscribeEvents(context.get(), request);
  v1::EventRecord event;
  ASSERT_TRUE(stream->Read(&event));
  ASSERT_TRUE(stream->Read(&event));
  ASSERT_EQ(event.position(), 2u);
  // Caught up: the subscription goes idle at the head (polled: it does so on its own thread).
  std::string scrape;
  for (int i = 0; i < 100; ++i) {
    scrape = Scrape();
    if (Sample(scrape, "outreach_consumer_lag_events{consumer=\"audit.svc\"}") == 0) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_EQ(Sample(scrape, "outreach_consumer_lag_events{consumer=\"audit.svc\"}"), 0) << scrape;
  EXPECT_EQ(Sample(scrape, "outreach_subscriptions_open"), 1);
  context->TryCancel();
  EXPECT_EQ(stream->Finish().error_code(), grpc::StatusCode::CANCELLED);
}

}  // namespace
}  // namespace outreach::server
