// Security with the real outreachd binary (issue 6): bearer tokens from --principals, SIGHUP
// revoking a token and changing a role (and a bad file keeping the old principals), the refusal
// to serve plaintext or development mode off loopback, --insecure-listen's warning, the TLS
// flags, and TLS with certificate files made by the test.
#include <sys/stat.h>

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

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
#include "absl/time/time.h"
#include "openssl/sha.h"
#include "outreach/v1/event_log.grpc.pb.h"
#include "outreach/v1/task_service.grpc.pb.h"
#include "tests/e2e/outreachd_process.h"
#include "tests/testing/test_ca.h"

namespace outreach {
namespace {

using ::testing::HasSubstr;

std::string HashHex(absl::string_view token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

class SecurityE2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern =
        (std::filesystem::temp_directory_path() / "outreach_security_e2e_XXXXXX").string();
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    port_ = e2e::FreePort();
    ASSERT_NE(port_, 0);
    principals_ = dir_ + "/principals";
    WriteFile(principals_,
              absl::StrCat("alice admin ", HashHex("alice-token-0123456789abcdef"), "\n",
                           "carol coordinator ", HashHex("carol-token-0123456789abcdef"), "\n"));
  }

  void TearDown() override {
    if (HasFailure() && daemon_ != nullptr) {
      std::cerr << "--- outreachd log ---\n" << daemon_->Log();
    }
    daemon_.reset();
    std::filesystem::remove_all(dir_);
  }

  void NewDaemon(std::vector<std::string> extra) {
    daemon_ = std::make_unique<e2e::Daemon>(dir_ + "/db", port_, dir_ + "/outreachd.log",
                                            std::move(extra));
  }

  void StartServing(std::vector<std::string> extra) {
    NewDaemon(std::move(extra));
    daemon_->Start();
    ASSERT_TRUE(daemon_->WaitServing()) << daemon_->Log();
    auto channel = e2e::Connect(daemon_->address());
    tasks_ = v1::TaskService::NewStub(channel);
  }

  // Starts a daemon expected to refuse: its exit code (-1 if it kept running).
  int StartRefused(std::vector<std::string> extra) {
    NewDaemon(std::move(extra));
    daemon_->Start();
    const int status = daemon_->WaitExit(absl::Seconds(20));
    if (status == -1) return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  static std::unique_ptr<grpc::ClientContext> As(const std::string& token) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    if (!token.empty()) context->AddMetadata("authorization", "Bearer " + token);
    return context;
  }

  grpc::StatusCode CreateAs(const std::string& token, const std::string& task_id) {
    v1::CreateTaskRequest request;
    request.set_task_id(task_id);
    request.set_patient_id("p-1");
    request.set_kind(v1::MANUAL);
    request.set_title("visit");
    v1::Task task;
    return tasks_->CreateTask(As(token).get(), request, &task).error_code();
  }
  grpc::StatusCode GetAs(const std::string& token, const std::string& task_id) {
    v1::GetTaskRequest request;
    request.set_task_id(task_id);
    v1::Task task;
    return tasks_->GetTask(As(token).get(), request, &task).error_code();
  }

  std::string dir_;
  int port_ = 0;
  std::string principals_;
  std::unique_ptr<e2e::Daemon> daemon_;
  std::unique_ptr<v1::TaskService::Stub> tasks_;
};

TEST_F(SecurityE2eTest, SighupRevokesATokenAndAppliesARoleChange) {
  StartServing({"--principals=" + principals_});
  EXPECT_THAT(daemon_->Log(), HasSubstr("2 principal(s)"));
  EXPECT_EQ(CreateAs("", "t1"), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(CreateAs("who-knows", "t1"), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(CreateAs("alice-token-0123456789abcdef", "t1"), grpc::StatusCode::OK);
  EXPECT_EQ(CreateAs("carol-token-0123456789abcdef", "t2"), grpc::StatusCode::PERMISSION_DENIED);
  EXPECT_EQ(GetAs("carol-token-0123456789abcdef", "t1"), grpc::StatusCode::OK);

  // alice's token revoked; carol becomes a service.
  WriteFile(principals_,
            absl::StrCat("carol service ", HashHex("carol-token-0123456789abcdef"), "\n"));
  daemon_->Signal(SIGHUP);
  ASSERT_TRUE(daemon_->WaitForLog("principals reloaded")) << daemon_->Log();
  EXPECT_EQ(GetAs("alice-token-0123456789abcdef", "t1"), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(CreateAs("carol-token-0123456789abcdef", "t2"), grpc::StatusCode::OK);

  // A bad file keeps the principals of the last good one, and the log says why.
  WriteFile(principals_,
            absl::StrCat("carol nosuchrole ", HashHex("carol-token-0123456789abcdef"), "\n"));
  daemon_->Signal(SIGHUP);
  ASSERT_TRUE(daemon_->WaitForLog("principals NOT reloaded")) << daemon_->Log();
  EXPECT_THAT(daemon_->Log(), HasSubstr("unknown role \"nosuchrole\""));
  EXPECT_EQ(CreateAs("carol-token-0123456789abcdef", "t3"), grpc::StatusCode::OK);
  EXPECT_EQ(GetAs("alice-token-0123456789abcdef", "t1"), grpc::StatusCode::UNAUTHENTICATED);

  const int status = daemon_->Stop(SIGTERM);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

TEST_F(SecurityE2eTest, PlaintextOffLoopbackRefusesToStartWithoutInsecureListen) {
  EXPECT_EQ(StartRefused({"--principals=" + principals_,
                          absl::StrCat("--listen=0.0.0.0:", port_)}),
            2);
  EXPECT_THAT(daemon_->Log(), HasSubstr("refusing to start"));
  EXPECT_THAT(daemon_->Log(), HasSubstr("--insecure-listen"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/db")) << "the database was opened";
}

TEST_F(SecurityE2eTest, InsecureListenStartsAndWarns) {
  StartServing({"--principals=" + principals_, absl::StrCat("--listen=0.0.0.0:", port_),
                "--insecure-listen"});
  EXPECT_THAT(daemon_->Log(), HasSubstr("WARNING: --insecure-listen"));
  EXPECT_EQ(CreateAs("alice-token-0123456789abcdef", "t1"), grpc::StatusCode::OK);
}

TEST_F(SecurityE2eTest, DevelopmentModeIsLoopbackOnlyAndSaysSo) {
  EXPECT_EQ(StartRefused({absl::StrCat("--listen=0.0.0.0:", port_), "--insecure-listen"}), 2);
  EXPECT_THAT(daemon_->Log(), HasSubstr("local development mode"));
  StartServing({});
  EXPECT_THAT(daemon_->Log(),
              HasSubstr("no --principals: local development mode, loopback only, actor "
                        "anonymous or x-actor"));
  EXPECT_EQ(CreateAs("", "t1"), grpc::StatusCode::OK);
}

TEST_F(SecurityE2eTest, BadSecurityFlagsRefuseToStart) {
  EXPECT_EQ(StartRefused({"--tls-cert=" + principals_}), 2);
  EXPECT_THAT(daemon_->Log(), HasSubstr("--tls-cert and --tls-key go together"));
  EXPECT_EQ(StartRefused({"--tls-cert=/nonexistent/cert.pem", "--tls-key=/nonexistent/key.pem"}),
            2);
  EXPECT_THAT(daemon_->Log(), HasSubstr("--tls-cert: cannot read \"/nonexistent/cert.pem\""));
  EXPECT_EQ(StartRefused({"--principals=/nonexistent/principals"}), 2);
  EXPECT_THAT(daemon_->Log(), HasSubstr("cannot read principals file /nonexistent/principals"));
  WriteFile(dir_ + "/bad-principals", "alice admin not-a-hash\n");
  EXPECT_EQ(StartRefused({"--principals=" + dir_ + "/bad-principals"}), 2);
  EXPECT_THAT(daemon_->Log(), HasSubstr("principals line 1"));
  EXPECT_EQ(StartRefused({"--access-log-retention=6 years"}), 2);
  EXPECT_THAT(daemon_->Log(), HasSubstr("--access-log-retention"));
}

TEST_F(SecurityE2eTest, AccessRecordsPastRetentionAreDeletedAtStartUp) {
  StartServing({"--principals=" + principals_, "--access-log-retention=1s"});
  ASSERT_EQ(CreateAs("alice-token-0123456789abcdef", "t1"), grpc::StatusCode::OK);
  ASSERT_EQ(GetAs("carol-token-0123456789abcdef", "t1"), grpc::StatusCode::OK);
  auto events = v1::EventLog::NewStub(e2e::Connect(daemon_->address()));
  auto read_access = [&]() {
    std::vector<v1::AccessRecord> records;
    auto context = As("alice-token-0123456789abcdef");
    auto reader = events->ReadAccessLog(context.get(), v1::ReadAccessLogRequest());
    v1::AccessRecord record;
    while (reader->Read(&record)) records.push_back(record);
    EXPECT_TRUE(reader->Finish().ok());
    return records;
  };
  std::vector<v1::AccessRecord> before = read_access();
  ASSERT_EQ(before.size(), 1u);
  EXPECT_EQ(before[0].principal(), "carol");
  ASSERT_EQ(daemon_->Stop(SIGTERM), 0);

  absl::SleepFor(absl::Milliseconds(1100));
  StartServing({"--principals=" + principals_, "--access-log-retention=1s"});
  events = v1::EventLog::NewStub(e2e::Connect(daemon_->address()));
  // The writer trims at open, beside the first calls: wait for it.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!read_access().empty() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(20));
  EXPECT_TRUE(read_access().empty());
  // The chain goes on from the anchor: carol's read was 1, alice's ReadAccessLog of it 2 (reads
  // of the audit trail are recorded too), so the next record is sequence 3.
  ASSERT_EQ(GetAs("carol-token-0123456789abcdef", "t1"), grpc::StatusCode::OK);
  std::vector<v1::AccessRecord> after = read_access();
  ASSERT_EQ(after.size(), 1u);
  EXPECT_EQ(after[0].sequence(), 3u);
}

TEST_F(SecurityE2eTest, ServesMutualTlsFromCertificateFiles) {
  absl::StatusOr<testing::TestCa> ca = testing::TestCa::Create("e2e CA");
  ASSERT_TRUE(ca.ok()) << ca.status();
  absl::StatusOr<testing::PemPair> server =
      ca->Issue("localhost", {"DNS:localhost", "IP:127.0.0.1"}, /*server=*/true);
  absl::StatusOr<testing::PemPair> client = ca->Issue("svc-scheduler", {}, /*server=*/false);
  ASSERT_TRUE(server.ok() && client.ok());
  WriteFile(dir_ + "/ca.pem", ca->root().cert);
  WriteFile(dir_ + "/server.pem", server->cert);
  WriteFile(dir_ + "/server.key", server->key);
  WriteFile(principals_, "scheduler service - svc-scheduler\n");
  NewDaemon({"--principals=" + principals_, "--tls-cert=" + dir_ + "/server.pem",
             "--tls-key=" + dir_ + "/server.key", "--tls-client-ca=" + dir_ + "/ca.pem",
             absl::StrCat("--listen=0.0.0.0:", port_)});
  daemon_->Start();
  ASSERT_TRUE(daemon_->WaitForLog("serving on")) << daemon_->Log();
  EXPECT_THAT(daemon_->Log(), HasSubstr("requiring client certificates"));

  auto connect = [&](const testing::PemPair* cert) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = ca->root().cert;
    if (cert != nullptr) {
      options.pem_private_key = cert->key;
      options.pem_cert_chain = cert->cert;
    }
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    tasks_ = v1::TaskService::NewStub(grpc::CreateCustomChannel(
        absl::StrCat("127.0.0.1:", port_), grpc::SslCredentials(options), args));
  };
  connect(&*client);
  EXPECT_EQ(CreateAs("", "t1"), grpc::StatusCode::OK);
  connect(nullptr);
  EXPECT_EQ(CreateAs("", "t2"), grpc::StatusCode::UNAVAILABLE);
}

// The database holds call notes and the access log: whatever umask outreachd is started with,
// its directory is 0700 and every file in it 0600.
TEST_F(SecurityE2eTest, DatabaseFilesArePrivateWhateverTheUmask) {
  const mode_t old_umask = umask(0);  // inherited by the daemon
  StartServing({"--principals=" + principals_});
  umask(old_umask);
  ASSERT_EQ(CreateAs("alice-token-0123456789abcdef", "t1"), grpc::StatusCode::OK);
  ASSERT_EQ(GetAs("carol-token-0123456789abcdef", "t1"), grpc::StatusCode::OK);
  ASSERT_EQ(daemon_->Stop(SIGTERM), 0);
  struct stat info {};
  ASSERT_EQ(stat((dir_ + "/db").c_str(), &info), 0);
  EXPECT_EQ(info.st_mode & 0777, 0700u);
  int files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir_ + "/db")) {
    ASSERT_EQ(stat(entry.path().c_str(), &info), 0);
    EXPECT_EQ(info.st_mode & 077, 0u) << entry.path() << " mode " << std::oct << info.st_mode;
    ++files;
  }
  EXPECT_GT(files, 3);
}

TEST_F(SecurityE2eTest, ADatabaseDirectoryOthersCanReadRefusesToStartUnlessAllowed) {
  const std::string db = dir_ + "/db";
  ASSERT_EQ(mkdir(db.c_str(), 0755), 0);
  ASSERT_EQ(chmod(db.c_str(), 0755), 0);
  EXPECT_EQ(StartRefused({"--principals=" + principals_}), 2);
  EXPECT_THAT(daemon_->Log(), HasSubstr(absl::StrCat("\"", db, "\" is open to group or others")));
  EXPECT_TRUE(std::filesystem::is_empty(db)) << "the database was opened";
  StartServing({"--principals=" + principals_, "--insecure-db-permissions"});
  EXPECT_EQ(CreateAs("alice-token-0123456789abcdef", "t1"), grpc::StatusCode::OK);
}

TEST_F(SecurityE2eTest, ATlsKeyThatIsNotTheCertificatesExitsTwoBeforeOpeningTheDatabase) {
  absl::StatusOr<testing::TestCa> ca = testing::TestCa::Create("e2e CA");
  ASSERT_TRUE(ca.ok()) << ca.status();
  absl::StatusOr<testing::PemPair> server =
      ca->Issue("localhost", {"DNS:localhost", "IP:127.0.0.1"}, /*server=*/true);
  absl::StatusOr<testing::PemPair> other = ca->Issue("other", {"DNS:other"}, /*server=*/true);
  ASSERT_TRUE(server.ok() && other.ok());
  WriteFile(dir_ + "/server.pem", server->cert);
  WriteFile(dir_ + "/other.key", other->key);
  EXPECT_EQ(StartRefused({"--principals=" + principals_, "--tls-cert=" + dir_ + "/server.pem",
                          "--tls-key=" + dir_ + "/other.key"}),
            2);
  EXPECT_THAT(daemon_->Log(), HasSubstr("--tls-key: is not the private key"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/db")) << "the database was opened";
}

// SIGHUP with a principals file that no longer lists a subscriber ends its open subscription
// with UNAUTHENTICATED, without waiting for another event.
TEST_F(SecurityE2eTest, SighupEndsTheOpenSubscriptionOfARemovedPrincipal) {
  WriteFile(principals_,
            absl::StrCat("alice admin ", HashHex("alice-token-0123456789abcdef"), "\n",
                         "audrey auditor ", HashHex("audrey-token-0123456789abcdef"), "\n"));
  StartServing({"--principals=" + principals_});
  ASSERT_EQ(CreateAs("alice-token-0123456789abcdef", "t1"), grpc::StatusCode::OK);
  auto events = v1::EventLog::NewStub(e2e::Connect(daemon_->address()));
  auto context = As("audrey-token-0123456789abcdef");
  auto stream = events->SubscribeEvents(context.get(), v1::SubscribeEventsRequest());
  v1::EventRecord event;
  ASSERT_TRUE(stream->Read(&event));  // caught up: the stream now waits for new events
  WriteFile(principals_,
            absl::StrCat("alice admin ", HashHex("alice-token-0123456789abcdef"), "\n"));
  const absl::Time reloaded = absl::Now();
  daemon_->Signal(SIGHUP);
  EXPECT_FALSE(stream->Read(&event));
  const grpc::Status status = stream->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << status.error_message();
  // Not a timing assertion on our code's speed: a stream that waited for the next event (or the
  // 10 s deadline) instead of ending on the reload would show here.
  EXPECT_LT(absl::Now() - reloaded, absl::Seconds(5));
  EXPECT_THAT(daemon_->Log(), HasSubstr("principals reloaded"));
}

}  // namespace
}  // namespace outreach
