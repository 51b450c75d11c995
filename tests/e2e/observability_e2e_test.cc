// End-to-end observability (issue 14): the real outreachd with --metrics-listen, scraped every
// second by a real Prometheus (Debian's /usr/bin/prometheus, started here on loopback with a
// configuration of its own), and its JSON log.
//
//  - A workflow (create, log contact, log and close, reads, a refused call) with a planted note,
//    title and patient id; then Prometheus's HTTP API (/api/v1/query) must show the request
//    counter, the commit latency count and the log head position moved.
//  - `promtool check metrics` on a scrape reports nothing.
//  - Every line of outreachd's log parses as a JSON object with ts (RFC 3339), level and msg;
//    the request lines name method, code, task id and request id; the planted note, title and
//    patient id appear nowhere in the log or the metrics.
// Without Prometheus installed the test fails, saying so (deploy/install-deps.sh installs it).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"
#include "outreach/v1/event_log.grpc.pb.h"
#include "outreach/v1/task_service.grpc.pb.h"
#include "tests/e2e/outreachd_process.h"

namespace outreach {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPrometheus[] = "/usr/bin/prometheus";
constexpr char kPromtool[] = "/usr/bin/promtool";
// Planted where only patient data may hold them: none may reach the log or the metrics.
constexpr char kPlantedNote[] = "planted-note-5f3a9c";
constexpr char kPlantedTitle[] = "planted-title-8d21e7";
constexpr char kPlantedPatient[] = "planted-patient-4b7e";

// The body of GET http://127.0.0.1:`port``path`, or "" on any failure (HTTP/1.0: the server
// closes the connection after the response).
std::string HttpGet(int port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "";
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    if (write(fd, request.data(), request.size()) == static_cast<ssize_t>(request.size())) {
      char buffer[8192];
      ssize_t n = 0;
      while ((n = read(fd, buffer, sizeof(buffer))) > 0) response.append(buffer, n);
    }
  }
  close(fd);
  const std::size_t body = response.find("\r\n\r\n");
  if (response.rfind("HTTP/1.", 0) != 0 || response.find(" 200 ") > response.find("\r\n") ||
      body == std::string::npos) {
    return "";
  }
  return response.substr(body + 4);
}

std::string UrlEncode(const std::string& text) {
  std::string out;
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '_' || c == '.' || c == '-') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppend(&out, "%", absl::Hex(c, absl::kZeroPad2));
    }
  }
  return out;
}

// Runs `command` through the shell; its exit status and combined output.
int RunShell(const std::string& command, std::string* output) {
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output->append(buffer, n);
  const int status = pclose(pipe);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A real Prometheus on 127.0.0.1, scraping `target` (host:port) every second.
class PrometheusProcess {
 public:
  PrometheusProcess(const std::string& dir, const std::string& target) : dir_(dir) {
    std::ofstream(dir_ + "/prometheus.yml")
        << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        << "scrape_configs:\n  - job_name: outreachd\n    static_configs:\n"
        << "      - targets: ['" << target << "']\n";
    port_ = e2e::FreePort();
  }
  PrometheusProcess(const PrometheusProcess&) = delete;
  PrometheusProcess& operator=(const PrometheusProcess&) = delete;
  ~PrometheusProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  int port() const { return port_; }
  std::string Log() const {
    std::ifstream in(dir_ + "/prometheus.log");
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  void Start() {
    std::vector<std::string> args = {
        kPrometheus, "--config.file=" + dir_ + "/prometheus.yml",
        "--storage.tsdb.path=" + dir_ + "/tsdb",
        absl::StrCat("--web.listen-address=127.0.0.1:", port_), "--log.level=warn"};
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const std::string log = dir_ + "/prometheus.log";
    const int log_fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    ASSERT_GE(log_fd, 0);
    const pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      dup2(log_fd, STDERR_FILENO);
      dup2(log_fd, STDOUT_FILENO);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(log_fd);
    ASSERT_GT(pid, 0);
    pid_ = pid;
  }

  bool WaitReady(absl::Duration timeout) const {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (!HttpGet(port_, "/-/ready").empty()) return true;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return false;
  }

  // The value of an instant query that returns one sample; -1 when it returns none.
  double Query(const std::string& promql) const {
    const std::string body = HttpGet(port_, "/api/v1/query?query=" + UrlEncode(promql));
    const nlohmann::json reply = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
    if (reply.is_discarded() || reply.value("status", "") != "success") return -1;
    const nlohmann::json& result = reply["data"]["result"];
    if (!result.is_array() || result.size() != 1) return -1;
    return std::stod(result[0]["value"][1].get<std::string>());
  }

 private:
  const std::string dir_;
  int port_ = 0;
  pid_t pid_ = 0;
};

class ObservabilityE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(std::filesystem::exists(kPrometheus) && std::filesystem::exists(kPromtool))
        << kPrometheus << " or " << kPromtool
        << " is not installed: run deploy/install-deps.sh (Debian package prometheus)";
    std::string pattern =
        (std::filesystem::temp_directory_path() / "outreach_obs_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    const int port = e2e::FreePort();
    metrics_port_ = e2e::FreePort();
    ASSERT_NE(port, 0);
    ASSERT_NE(metrics_port_, 0);
    // An empty --log-format is the default (and stops Daemon from asking for text): stderr is
    // a file here, so the log is JSON.
    daemon_ = std::make_unique<e2e::Daemon>(
        dir_ + "/db", port, dir_ + "/outreachd.log",
        std::vector<std::string>{absl::StrCat("--metrics-listen=127.0.0.1:", metrics_port_),
                                 "--log-format="});
  }

  void TearDown() override {
    if (HasFailure()) {
      std::cerr << "--- outreachd log ---\n" << daemon_->Log();
      if (prometheus_ != nullptr) std::cerr << "--- prometheus log ---\n" << prometheus_->Log();
    }
    prometheus_.reset();
    daemon_.reset();
    std::filesystem::remove_all(dir_);
  }

  static std::unique_ptr<grpc::ClientContext> Context() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    context->AddMetadata("x-actor", "nurse.kim");
    return context;
  }

  // Create, Log Contact, Log and Close, and reads of the task and the log; one refused call.
  void DriveWorkflow() {
    auto channel = e2e::Connect(daemon_->address());
    auto tasks = v1::TaskService::NewStub(channel);
    auto events = v1::EventLog::NewStub(channel);
    v1::CreateTaskRequest create;
    create.set_task_id("obs-t1");
    create.set_patient_id(kPlantedPatient);
    create.set_kind(v1::MANUAL);
    create.set_title(kPlantedTitle);
    v1::Task task;
    ASSERT_TRUE(tasks->CreateTask(Context().get(), create, &task).ok());
    v1::LogContactRequest contact;
    contact.set_task_id("obs-t1");
    contact.set_outcome(v1::NO_ANSWER);
    contact.set_notes(kPlantedNote);
    contact.set_follow_up_date(absl::FormatTime("%Y-%m-%d", absl::Now() + absl::Hours(72),
                                                absl::UTCTimeZone()));
    contact.set_request_id("obs-call-1");
    ASSERT_TRUE(tasks->LogContact(Context().get(), contact, &task).ok());
    contact.clear_follow_up_date();
    contact.set_close_task(true);
    contact.set_outcome(v1::SCHEDULED);
    contact.set_request_id("obs-call-2");
    ASSERT_TRUE(tasks->LogContact(Context().get(), contact, &task).ok());
    EXPECT_EQ(task.status(), v1::CLOSED);
    v1::ListTasksRequest list;
    list.set_patient_id(kPlantedPatient);
    list.add_statuses(v1::CLOSED);
    v1::ListTasksResponse listed;
    ASSERT_TRUE(tasks->ListTasks(Context().get(), list, &listed).ok());
    EXPECT_EQ(listed.tasks_size(), 1);
    v1::GetTaskRequest missing;
    missing.set_task_id("obs-missing");
    EXPECT_EQ(tasks->GetTask(Context().get(), missing, &task).error_code(),
              grpc::StatusCode::NOT_FOUND);
    v1::VerifyLogResponse verified;
    ASSERT_TRUE(events->VerifyLog(Context().get(), v1::VerifyLogRequest(), &verified).ok());
    EXPECT_TRUE(verified.ok());
  }

  // Polls `promql` until it is at least `want` (true) or 30 s pass (false).
  bool WaitForQuery(const std::string& promql, double want, double* last) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (absl::Now() < deadline) {
      *last = prometheus_->Query(promql);
      if (*last >= want) return true;
      absl::SleepFor(absl::Milliseconds(250));
    }
    return false;
  }

  std::string dir_;
  int metrics_port_ = 0;
  std::unique_ptr<e2e::Daemon> daemon_;
  std::unique_ptr<PrometheusProcess> prometheus_;
};

TEST_F(ObservabilityE2eTest, PrometheusScrapesTheWorkflowAndTheLogIsJsonWithoutPatientData) {
  daemon_->Start();
  ASSERT_TRUE(daemon_->WaitServing()) << daemon_->Log();
  prometheus_ = std::make_unique<PrometheusProcess>(
      dir_, absl::StrCat("127.0.0.1:", metrics_port_));
  prometheus_->Start();
  ASSERT_TRUE(prometheus_->WaitReady(absl::Seconds(30))) << prometheus_->Log();
  DriveWorkflow();
  if (HasFatalFailure()) return;
  // A consumer following the log, open while Prometheus scrapes.
  auto events = v1::EventLog::NewStub(e2e::Connect(daemon_->address()));
  auto follow = Context();
  v1::SubscribeEventsRequest from_start;
  from_start.set_from_position(1);
  auto subscription = events->SubscribeEvents(follow.get(), from_start);
  v1::EventRecord first;
  ASSERT_TRUE(subscription->Read(&first));
  EXPECT_EQ(first.position(), 1u);

  // Read back through Prometheus: what the workflow did moved these series.
  double value = 0;
  EXPECT_TRUE(WaitForQuery(
      "sum(outreach_rpc_requests_total{method=\"/outreach.v1.TaskService/LogContact\","
      "code=\"OK\"})", 2, &value)) << value;
  EXPECT_TRUE(WaitForQuery(
      "sum(outreach_rpc_requests_total{method=\"/outreach.v1.TaskService/GetTask\","
      "code=\"NOT_FOUND\"})", 1, &value)) << value;
  EXPECT_TRUE(WaitForQuery("sum(outreach_writer_commit_seconds_count)", 3, &value)) << value;
  EXPECT_TRUE(WaitForQuery("max(outreach_log_head_position)", 4, &value)) << value;
  EXPECT_TRUE(WaitForQuery("sum(outreach_access_log_appends_total)", 1, &value)) << value;
  EXPECT_TRUE(WaitForQuery("up{job=\"outreachd\"}", 1, &value)) << value;
  EXPECT_TRUE(WaitForQuery("sum(outreach_subscriptions_open)", 1, &value)) << value;
  EXPECT_TRUE(WaitForQuery("count(outreach_consumer_lag_events{consumer=\"nurse.kim\"})", 1,
                           &value))
      << value;
  follow->TryCancel();
  EXPECT_EQ(subscription->Finish().error_code(), grpc::StatusCode::CANCELLED);

  // promtool's lint of one scrape: no finding at all.
  const std::string scrape = HttpGet(metrics_port_, "/metrics");
  ASSERT_THAT(scrape, HasSubstr("outreach_build_info{"));
  std::ofstream(dir_ + "/scrape.txt") << scrape;
  std::string lint;
  EXPECT_EQ(RunShell(absl::StrCat(kPromtool, " check metrics < ", dir_, "/scrape.txt"), &lint), 0)
      << lint;
  EXPECT_EQ(lint, "");
  for (const char* planted : {kPlantedNote, kPlantedTitle, kPlantedPatient}) {
    EXPECT_THAT(scrape, Not(HasSubstr(planted)));
  }

  ASSERT_EQ(daemon_->Stop(SIGTERM), 0);
  const std::string log = daemon_->Log();
  for (const char* planted : {kPlantedNote, kPlantedTitle, kPlantedPatient}) {
    EXPECT_THAT(log, Not(HasSubstr(planted)));
  }
  const std::regex rfc3339(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z)");
  int requests = 0;
  int lines = 0;
  bool logged_contact = false;
  for (absl::string_view line : absl::StrSplit(log, '\n', absl::SkipEmpty())) {
    ++lines;
    const nlohmann::json record = nlohmann::json::parse(line, nullptr, false);
    ASSERT_TRUE(record.is_object()) << "not a JSON object: " << line;
    ASSERT_TRUE(record.contains("ts") && record["ts"].is_string()) << line;
    EXPECT_TRUE(std::regex_match(record["ts"].get<std::string>(), rfc3339)) << line;
    ASSERT_TRUE(record.contains("level") && record["level"].is_string()) << line;
    ASSERT_TRUE(record.contains("msg") && record["msg"].is_string()) << line;
    if (record["msg"] != "request") continue;
    ++requests;
    for (const char* key : {"method", "code", "duration_ms", "principal", "on_behalf_of",
                            "request_id", "task_id", "peer"}) {
      EXPECT_TRUE(record.contains(key)) << key << " missing: " << line;
    }
    if (record["method"] == "/outreach.v1.TaskService/LogContact" &&
        record["request_id"] == "obs-call-2") {
      logged_contact = true;
      EXPECT_EQ(record["code"], "OK");
      EXPECT_EQ(record["task_id"], "obs-t1");
      EXPECT_EQ(record["principal"], "nurse.kim");
    }
  }
  EXPECT_TRUE(logged_contact) << log;
  EXPECT_GE(requests, 8);  // a health check, the workflow's six calls, the subscription
  EXPECT_THAT(log, HasSubstr("\"msg\":\"stopped\""));
  std::cout << lines << " log lines, " << requests << " request lines\n";
}

// Bad observability flags stop the start (exit 2) before the database is opened, naming the flag.
TEST_F(ObservabilityE2eTest, ATakenMetricsAddressOrAnUnknownLogFormatStopsTheStart) {
  // A port this test holds: the exposer cannot bind it.
  const int held = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(held, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ASSERT_EQ(bind(held, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(held, 1), 0);
  socklen_t len = sizeof(addr);
  getsockname(held, reinterpret_cast<sockaddr*>(&addr), &len);
  e2e::Daemon taken(dir_ + "/db-taken", e2e::FreePort(), dir_ + "/taken.log",
                    {absl::StrCat("--metrics-listen=127.0.0.1:", ntohs(addr.sin_port))});
  taken.Start();
  const int status = taken.WaitExit(absl::Seconds(20));
  close(held);
  ASSERT_TRUE(WIFEXITED(status)) << status << taken.Log();
  EXPECT_EQ(WEXITSTATUS(status), 2) << taken.Log();
  EXPECT_THAT(taken.Log(), HasSubstr("refusing to start: --metrics-listen: cannot serve on"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/db-taken/CURRENT"));  // never opened

  e2e::Daemon xml(dir_ + "/db-xml", e2e::FreePort(), dir_ + "/xml.log", {"--log-format=xml"});
  xml.Start();
  const int xml_status = xml.WaitExit(absl::Seconds(20));
  ASSERT_TRUE(WIFEXITED(xml_status)) << xml_status;
  EXPECT_EQ(WEXITSTATUS(xml_status), 2);
  EXPECT_THAT(xml.Log(), HasSubstr("--log-format: \"xml\" is not text or json"));
}

}  // namespace
}  // namespace outreach
