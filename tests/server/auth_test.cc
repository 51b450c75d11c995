// server/auth.h: the principals file, token and certificate lookup, reload, the role table
// (every RPC x role), x-on-behalf-of, development mode, loopback detection; and TLS / mTLS
// handshakes with certificates made by the test (tests/testing/test_ca.h).
#include "server/auth.h"

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/security/server_credentials.h"
#include "gtest/gtest.h"
#include "openssl/sha.h"
#include "outreach/v1/event_log.pb.h"
#include "outreach/v1/patient_service.pb.h"
#include "outreach/v1/report_service.pb.h"
#include "outreach/v1/task_service.grpc.pb.h"
#include "tests/testing/test_ca.h"

namespace outreach::server {
namespace {

using ::testing::HasSubstr;
using ::testing::UnorderedElementsAre;

std::string HashHex(absl::string_view token) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

// One principal per role, each with its own token, plus a certificate-only one.
std::string StandardFile() {
  return absl::StrCat(
      "# principals (format 1)\n",
      "coord-1      coordinator          ", HashHex("coord-token-0123456789abcdef"), "\n",
      "svc-1        service              ", HashHex("svc-token-0123456789abcdef"),
      "  billing.internal\n",
      "\n",
      "auditor-1    auditor              ", HashHex("auditor-token-0123456789abcdef"), "\n",
      "admin-1      admin                ", HashHex("admin-token-0123456789abcdef"), "\n",
      "cert-only    coordinator,auditor  -  Jane Doe\n");
}

std::shared_ptr<const Principals> MustParse(const std::string& text) {
  absl::StatusOr<std::shared_ptr<const Principals>> parsed = Principals::Parse(text);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return parsed.ok() ? *parsed : nullptr;
}

// ---- The principals file ------------------------------------------------------------------

TEST(PrincipalsTest, ParsesIdsRolesTokenHashesAndCertificateSubjects) {
  std::shared_ptr<const Principals> principals = MustParse(StandardFile());
  ASSERT_NE(principals, nullptr);
  EXPECT_EQ(principals->size(), 5u);
  const Principal* svc = principals->FindById("svc-1");
  ASSERT_NE(svc, nullptr);
  EXPECT_EQ(svc->roles, Roles(Role::kService));
  EXPECT_EQ(svc->cert_subject, "billing.internal");
  EXPECT_EQ(absl::BytesToHexString(svc->token_sha256), HashHex("svc-token-0123456789abcdef"));
  const Principal* cert_only = principals->FindById("cert-only");
  ASSERT_NE(cert_only, nullptr);
  EXPECT_EQ(cert_only->roles, Role::kCoordinator | Role::kAuditor);
  EXPECT_TRUE(cert_only->token_sha256.empty());
  EXPECT_EQ(cert_only->cert_subject, "Jane Doe");  // the rest of the line, spaces included
}

TEST(PrincipalsTest, AcceptsUpperCaseHexAndTabs) {
  std::string hex = HashHex("t");
  for (char& c : hex) c = static_cast<char>(toupper(c));
  std::shared_ptr<const Principals> principals = MustParse(absl::StrCat("p1\tadmin\t", hex, "\n"));
  ASSERT_NE(principals, nullptr);
  EXPECT_NE(principals->FindByToken("t"), nullptr);
}

TEST(PrincipalsTest, RefusesABadFileNamingTheLine) {
  const std::string good = absl::StrCat("ok-1 coordinator ", HashHex("a"), "\n");
  const std::map<std::string, std::string> bad = {
      {"unknown role", absl::StrCat(good, "p2 nurse ", HashHex("b"))},
      {"64 hex digits", absl::StrCat(good, "p2 admin abc123")},
      {"want: principal_id", absl::StrCat(good, "p2 admin")},
      {"appears twice", absl::StrCat(good, "ok-1 admin ", HashHex("b"))},
      {"token hash already belongs to ok-1", absl::StrCat(good, "p2 admin ", HashHex("a"))},
      {"principal id", absl::StrCat(good, "bad/id admin ", HashHex("b"))},
      {"token hash or a certificate subject", absl::StrCat(good, "p2 admin -")},
      {"unknown role \"\"", absl::StrCat(good, "p2 admin, ", HashHex("b"))},
      {"reserved for the service's own actors",
       absl::StrCat(good, "system:expiry admin ", HashHex("b"))},
      // What the README's recipe writes when $TOKEN was unset.
      {"SHA-256 of the empty string", absl::StrCat(good, "p2 admin ", HashHex(""))},
  };
  for (const auto& [why, text] : bad) {
    absl::StatusOr<std::shared_ptr<const Principals>> parsed = Principals::Parse(text);
    ASSERT_FALSE(parsed.ok()) << why;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << why;
    EXPECT_THAT(parsed.status().message(), HasSubstr("line 2")) << why;
    EXPECT_THAT(parsed.status().message(), HasSubstr(why));
  }
  const std::string dup_cert = "a1 admin - CN1\na2 admin - CN1\n";
  EXPECT_THAT(Principals::Parse(dup_cert).status().message(),
              HasSubstr("certificate subject already belongs to a1"));
}

TEST(PrincipalsTest, RefusesAFileWithNoPrincipal) {
  EXPECT_EQ(Principals::Parse("# nobody\n\n").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Principals::Parse("").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(PrincipalsTest, FindsATokenOnlyByItsHash) {
  std::shared_ptr<const Principals> principals = MustParse(StandardFile());
  ASSERT_NE(principals, nullptr);
  const Principal* found = principals->FindByToken("auditor-token-0123456789abcdef");
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(found->id, "auditor-1");
  EXPECT_EQ(principals->FindByToken("auditor-token "), nullptr);
  EXPECT_EQ(principals->FindByToken(""), nullptr);
  // The hash is no token.
  EXPECT_EQ(principals->FindByToken(HashHex("auditor-token-0123456789abcdef")), nullptr);
  // A certificate-only principal has no token at all.
  EXPECT_EQ(principals->FindByToken("-"), nullptr);
}

TEST(PrincipalsTest, FindsACertificateByCommonNameOrSan) {
  std::shared_ptr<const Principals> principals = MustParse(StandardFile());
  ASSERT_NE(principals, nullptr);
  const std::vector<std::string> san_match = {"some-cn", "billing.internal"};
  ASSERT_NE(principals->FindByCertSubject(san_match), nullptr);
  EXPECT_EQ(principals->FindByCertSubject(san_match)->id, "svc-1");
  EXPECT_EQ(principals->FindByCertSubject(std::vector<std::string>{"nobody"}), nullptr);
}

TEST(PrincipalsTest, PracticesLimitAPrincipalAndComeBeforeTheCertificateSubject) {
  std::shared_ptr<const Principals> principals = MustParse(absl::StrCat(
      "north-nurse coordinator ", HashHex("a"), " practices=north\n",
      "two-svc     service     ", HashHex("b"), " practices=south,north,south  svc.example\n",
      "cert-north  coordinator - practices=north Jane Doe\n",
      "everywhere  admin       ", HashHex("c"), "\n"));
  ASSERT_NE(principals, nullptr);
  const Principal* nurse = principals->FindById("north-nurse");
  ASSERT_NE(nurse, nullptr);
  EXPECT_THAT(nurse->practices, ::testing::ElementsAre("north"));
  EXPECT_EQ(nurse->cert_subject, "");
  const Principal* svc = principals->FindById("two-svc");
  ASSERT_NE(svc, nullptr);
  EXPECT_THAT(svc->practices, ::testing::ElementsAre("north", "south"));  // sorted, once each
  EXPECT_EQ(svc->cert_subject, "svc.example");
  const Principal* cert = principals->FindById("cert-north");
  ASSERT_NE(cert, nullptr);
  EXPECT_THAT(cert->practices, ::testing::ElementsAre("north"));
  EXPECT_EQ(cert->cert_subject, "Jane Doe");
  EXPECT_TRUE(principals->FindById("everywhere")->practices.empty());
}

TEST(PrincipalsTest, RefusesABadPracticeListNamingTheLine) {
  const std::string good = absl::StrCat("ok-1 coordinator ", HashHex("a"), "\n");
  const std::vector<std::string> lists = {"practices=", "practices=north,", "practices=no/rth",
                                          "practices=,north",
                                          "practices=" + std::string(65, 'p')};
  for (const std::string& list : lists) {
    absl::StatusOr<std::shared_ptr<const Principals>> parsed =
        Principals::Parse(absl::StrCat(good, "p2 admin ", HashHex("b"), " ", list, "\n"));
    ASSERT_FALSE(parsed.ok()) << list;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << list;
    EXPECT_THAT(parsed.status().message(), HasSubstr("line 2: practices:")) << list;
  }
}

TEST(PrincipalsTest, CallerSeesItsPracticesAndTheDefaultPracticeIsNamedDefault) {
  Caller unlimited;
  EXPECT_TRUE(unlimited.MaySee("anything"));
  EXPECT_TRUE(CheckPracticeAccess(unlimited, "").ok());
  Caller limited;
  limited.principal = "nurse-1";
  limited.practices = {"default", "north"};
  EXPECT_TRUE(limited.MaySee("north"));
  EXPECT_TRUE(limited.MaySee(""));  // an empty practice id is the default practice
  EXPECT_FALSE(limited.MaySee("south"));
  const absl::Status denied = CheckPracticeAccess(limited, "south");
  EXPECT_EQ(denied.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(denied.message(),
            "practice_id: principal nurse-1 is limited to practices default, north (not "
            "\"south\")");
}

class PrincipalRegistryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/auth_test.XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    path_ = dir_ + "/principals";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  void Write(const std::string& text) {
    std::ofstream out(path_, std::ios::trunc);
    out << text;
  }
  std::string dir_;
  std::string path_;
};

TEST_F(PrincipalRegistryTest, MissingFileIsNotFound) {
  EXPECT_EQ(PrincipalRegistry::Load(path_).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(PrincipalRegistryTest, ReloadSwapsInTheNewFile) {
  Write(StandardFile());
  absl::StatusOr<std::unique_ptr<PrincipalRegistry>> registry = PrincipalRegistry::Load(path_);
  ASSERT_TRUE(registry.ok()) << registry.status();
  std::shared_ptr<const Principals> before = (*registry)->Current();
  ASSERT_NE(before->FindByToken("coord-token-0123456789abcdef"), nullptr);

  // coord-1's token revoked; auditor-1 promoted to admin.
  Write(absl::StrCat("auditor-1 admin ", HashHex("auditor-token-0123456789abcdef"), "\n"));
  ASSERT_TRUE((*registry)->Reload().ok());
  std::shared_ptr<const Principals> after = (*registry)->Current();
  EXPECT_EQ(after->FindByToken("coord-token-0123456789abcdef"), nullptr);
  ASSERT_NE(after->FindByToken("auditor-token-0123456789abcdef"), nullptr);
  EXPECT_EQ(after->FindByToken("auditor-token-0123456789abcdef")->roles, Roles(Role::kAdmin));
  // A snapshot taken before the reload does not change under its holder.
  EXPECT_NE(before->FindByToken("coord-token-0123456789abcdef"), nullptr);
}

TEST_F(PrincipalRegistryTest, ABadFileKeepsTheOldPrincipalsAndSaysWhy) {
  Write(StandardFile());
  absl::StatusOr<std::unique_ptr<PrincipalRegistry>> registry = PrincipalRegistry::Load(path_);
  ASSERT_TRUE(registry.ok()) << registry.status();
  Write("admin-1 superuser 00\n");
  const absl::Status reloaded = (*registry)->Reload();
  EXPECT_EQ(reloaded.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(reloaded.message(), HasSubstr("line 1"));
  EXPECT_THAT(reloaded.message(), HasSubstr("keeping the previous principals"));
  EXPECT_NE((*registry)->Current()->FindByToken("coord-token-0123456789abcdef"), nullptr);

  std::filesystem::remove(path_);
  EXPECT_EQ((*registry)->Reload().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ((*registry)->Current()->size(), 5u);
}

// ---- The role table -----------------------------------------------------------------------

constexpr absl::string_view kTaskService = "/outreach.v1.TaskService/";
constexpr absl::string_view kEventLog = "/outreach.v1.EventLog/";

// The issue's table, written out independently of server/auth.cc: which roles may call what.
const std::map<std::string, std::vector<Role>>& ExpectedMatrix() {
  static const auto* const kMatrix = new std::map<std::string, std::vector<Role>>{
      {absl::StrCat(kTaskService, "CreateTask"), {Role::kService, Role::kAdmin}},
      {absl::StrCat(kTaskService, "GetTask"),
       {Role::kCoordinator, Role::kService, Role::kAuditor, Role::kAdmin}},
      {absl::StrCat(kTaskService, "ListTasks"),
       {Role::kCoordinator, Role::kService, Role::kAdmin}},
      {absl::StrCat(kTaskService, "LogContact"),
       {Role::kCoordinator, Role::kService, Role::kAdmin}},
      // Issue 13: assignment and cancelling.
      {absl::StrCat(kTaskService, "AssignTask"),
       {Role::kCoordinator, Role::kService, Role::kAdmin}},
      {absl::StrCat(kTaskService, "ClaimTask"), {Role::kCoordinator, Role::kAdmin}},
      {absl::StrCat(kTaskService, "CancelTask"),
       {Role::kCoordinator, Role::kService, Role::kAdmin}},
      // Issue 13: resolution from outside, the patient's preference and summary.
      {absl::StrCat(kTaskService, "ResolveTasks"), {Role::kService, Role::kAdmin}},
      {"/outreach.v1.PatientService/SetContactPreference",
       {Role::kCoordinator, Role::kService, Role::kAdmin}},
      {"/outreach.v1.PatientService/GetPatientOutreach",
       {Role::kCoordinator, Role::kService, Role::kAdmin}},
      // Issue 17: erasure destroys data: admin only.
      {"/outreach.v1.PatientService/ErasePatient", {Role::kAdmin}},
      {absl::StrCat(kEventLog, "ReadEvents"), {Role::kAuditor, Role::kAdmin}},
      {absl::StrCat(kEventLog, "SubscribeEvents"), {Role::kAuditor, Role::kAdmin}},
      {absl::StrCat(kEventLog, "VerifyLog"), {Role::kAuditor, Role::kAdmin}},
      {absl::StrCat(kEventLog, "GetTaskHistory"), {Role::kAuditor, Role::kAdmin}},
      {absl::StrCat(kEventLog, "ReadAccessLog"), {Role::kAuditor, Role::kAdmin}},
      // Issue 16: durable consumers (service, auditor, admin); reports (no patient data: all).
      {absl::StrCat(kEventLog, "Follow"), {Role::kService, Role::kAuditor, Role::kAdmin}},
      {absl::StrCat(kEventLog, "AckEvents"), {Role::kService, Role::kAuditor, Role::kAdmin}},
      {absl::StrCat(kEventLog, "ListConsumers"), {Role::kService, Role::kAuditor, Role::kAdmin}},
      {"/outreach.v1.ReportService/GetOutreachStats",
       {Role::kCoordinator, Role::kService, Role::kAuditor, Role::kAdmin}},
      // Issue 15: a live backup, admin only.
      {"/outreach.v1.AdminService/CreateBackup", {Role::kAdmin}},
  };
  return *kMatrix;
}

std::string TokenOf(Role role) {
  switch (role) {
    case Role::kCoordinator:
      return "coord-token-0123456789abcdef";
    case Role::kService:
      return "svc-token-0123456789abcdef";
    case Role::kAuditor:
      return "auditor-token-0123456789abcdef";
    case Role::kAdmin:
      return "admin-token-0123456789abcdef";
  }
  return "";
}

class AuthenticatorTest : public PrincipalRegistryTest {
 protected:
  void SetUp() override {
    PrincipalRegistryTest::SetUp();
    Write(StandardFile());
    absl::StatusOr<std::unique_ptr<PrincipalRegistry>> registry = PrincipalRegistry::Load(path_);
    ASSERT_TRUE(registry.ok()) << registry.status();
    registry_ = *std::move(registry);
    auth_ = std::make_unique<Authenticator>(registry_.get());
  }
  static CallCredentials Bearer(const std::string& token) {
    CallCredentials credentials;
    credentials.authorization = absl::StrCat("Bearer ", token);
    return credentials;
  }
  std::unique_ptr<PrincipalRegistry> registry_;
  std::unique_ptr<Authenticator> auth_;
};

TEST_F(AuthenticatorTest, TheTableCoversEveryOutreachRpcAndNothingElseOfOurs) {
  std::vector<std::string> ours;
  for (const MethodRule& rule : MethodTable()) {
    if (absl::StartsWith(rule.method, "/outreach.")) ours.emplace_back(rule.method);
  }
  std::vector<std::string> expected;
  for (const auto& [method, roles] : ExpectedMatrix()) expected.push_back(method);
  EXPECT_THAT(ours, ::testing::UnorderedElementsAreArray(expected));
  // And every outreach RPC in the generated services is in the expected matrix.
  for (const google::protobuf::ServiceDescriptor* service :
       {v1::GetTaskRequest::descriptor()->file()->FindServiceByName("TaskService"),
        v1::ReadEventsRequest::descriptor()->file()->FindServiceByName("EventLog"),
        v1::GetPatientOutreachRequest::descriptor()->file()->FindServiceByName(
            "PatientService"),
        v1::GetOutreachStatsRequest::descriptor()->file()->FindServiceByName("ReportService")}) {
    ASSERT_NE(service, nullptr);
    for (int i = 0; i < service->method_count(); ++i) {
      const std::string method =
          absl::StrCat("/", service->full_name(), "/", service->method(i)->name());
      EXPECT_EQ(ExpectedMatrix().count(method), 1u) << method << " has no row";
    }
  }
}

TEST_F(AuthenticatorTest, EveryRpcByEveryRoleIsAllowedExactlyAsTheTableSays) {
  int checked = 0;
  for (const auto& [method, allowed] : ExpectedMatrix()) {
    for (Role role : kEveryRole) {
      const bool expect_allowed =
          std::find(allowed.begin(), allowed.end(), role) != allowed.end();
      absl::StatusOr<Caller> caller = auth_->Check(method, Bearer(TokenOf(role)));
      if (expect_allowed) {
        EXPECT_TRUE(caller.ok()) << method << " by " << RoleName(role) << ": " << caller.status();
      } else {
        EXPECT_EQ(caller.status().code(), absl::StatusCode::kPermissionDenied)
            << method << " by " << RoleName(role);
      }
      EXPECT_EQ(Allowed(method, Roles(role)), expect_allowed) << method << " " << RoleName(role);
      ++checked;
    }
  }
  EXPECT_EQ(checked, 21 * 4);  // 21 outreach RPCs x 4 roles
}

TEST_F(AuthenticatorTest, TheCallerIsThePrincipal) {
  absl::StatusOr<Caller> caller =
      auth_->Check("/outreach.v1.TaskService/GetTask", Bearer("coord-token-0123456789abcdef"));
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(caller->principal, "coord-1");
  EXPECT_EQ(caller->roles, Roles(Role::kCoordinator));
  EXPECT_FALSE(caller->development);
  // x-actor is ignored once principals are configured.
  CallCredentials credentials = Bearer("coord-token-0123456789abcdef");
  credentials.x_actor = "someone-else";
  caller = auth_->Check("/outreach.v1.TaskService/GetTask", credentials);
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(caller->principal, "coord-1");
}

TEST_F(AuthenticatorTest, MissingMalformedOrUnknownCredentialsAreUnauthenticated) {
  const std::string method = "/outreach.v1.TaskService/GetTask";
  EXPECT_EQ(auth_->Check(method, {}).status().code(), absl::StatusCode::kUnauthenticated);
  CallCredentials basic;
  basic.authorization = "Basic Zm9vOmJhcg==";
  EXPECT_EQ(auth_->Check(method, basic).status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(auth_->Check(method, Bearer("")).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(auth_->Check(method, Bearer("guess")).status().code(),
            absl::StatusCode::kUnauthenticated);
  CallCredentials lower;
  lower.authorization = "bearer coord-token-0123456789abcdef";
  EXPECT_TRUE(auth_->Check(method, lower).ok());
}

// An empty or short token never authenticates, even when its hash is in the file: "Bearer "
// followed by whitespace, and tokens under kMinTokenLength characters.
TEST_F(AuthenticatorTest, EmptyOrShortBearerTokensAreUnauthenticatedEvenWhenListed) {
  const std::string short_token(kMinTokenLength - 1, 'k');
  const std::string long_enough(kMinTokenLength, 'k');
  Write(absl::StrCat(StandardFile(), "short-1 admin ", HashHex(short_token), "\n",
                     "long-1 admin ", HashHex(long_enough), "\n"));
  ASSERT_TRUE(registry_->Reload().ok());
  const std::string method = "/outreach.v1.TaskService/GetTask";
  for (const std::string& header : {std::string("Bearer "), std::string("Bearer    "),
                                    std::string("Bearer \t "), "Bearer " + short_token}) {
    CallCredentials credentials;
    credentials.authorization = header;
    absl::StatusOr<Caller> caller = auth_->Check(method, credentials);
    EXPECT_EQ(caller.status().code(), absl::StatusCode::kUnauthenticated) << header;
  }
  EXPECT_THAT(auth_->Check(method, Bearer(short_token)).status().message(),
              HasSubstr("at least 24 characters"));
  absl::StatusOr<Caller> caller = auth_->Check(method, Bearer(long_enough));
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->principal, "long-1");
}

// A call that outlives a reload (a stream) is checked again against the new file.
TEST_F(AuthenticatorTest, RecheckFollowsTheCurrentPrincipals) {
  const std::string method = "/outreach.v1.EventLog/SubscribeEvents";
  absl::StatusOr<Caller> caller = auth_->Check(method, Bearer("auditor-token-0123456789abcdef"));
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_TRUE(auth_->Recheck(*caller, method).ok());
  Write(absl::StrCat(StandardFile(), ""));
  ASSERT_TRUE(registry_->Reload().ok());
  EXPECT_TRUE(auth_->Recheck(*caller, method).ok());
  Write(absl::StrCat("auditor-1 coordinator ", HashHex("auditor-token-0123456789abcdef"), "\n"));
  ASSERT_TRUE(registry_->Reload().ok());
  EXPECT_EQ(auth_->Recheck(*caller, method).code(), absl::StatusCode::kPermissionDenied);
  Write(absl::StrCat("auditor-1 auditor ", HashHex("rotated-token-0123456789abcdef"), "\n"));
  ASSERT_TRUE(registry_->Reload().ok());
  EXPECT_EQ(auth_->Recheck(*caller, method).code(), absl::StatusCode::kUnauthenticated);
  Write(absl::StrCat("admin-1 admin ", HashHex("admin-token-0123456789abcdef"), "\n"));
  ASSERT_TRUE(registry_->Reload().ok());
  EXPECT_EQ(auth_->Recheck(*caller, method).code(), absl::StatusCode::kUnauthenticated);
}

// A limited principal's caller carries its practices; a stream it opened ends once a reload
// takes away a practice it could see (or limits a principal that was not).
TEST_F(AuthenticatorTest, RecheckEndsACallWhosePrincipalLostAPractice) {
  const std::string method = "/outreach.v1.EventLog/SubscribeEvents";
  const std::string token = "auditor-token-0123456789abcdef";
  auto file = [&](absl::string_view practices) {
    return absl::StrCat("auditor-1 auditor ", HashHex(token), " ", practices, "\n");
  };
  Write(file("practices=north,south"));
  ASSERT_TRUE(registry_->Reload().ok());
  absl::StatusOr<Caller> caller = auth_->Check(method, Bearer(token));
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_THAT(caller->practices, ::testing::ElementsAre("north", "south"));
  EXPECT_TRUE(caller->limited());
  Write(file("practices=east,north,south"));
  ASSERT_TRUE(registry_->Reload().ok());
  EXPECT_TRUE(auth_->Recheck(*caller, method).ok());
  Write(file(""));  // unlimited now: sees more, never less
  ASSERT_TRUE(registry_->Reload().ok());
  EXPECT_TRUE(auth_->Recheck(*caller, method).ok());
  Write(file("practices=north"));
  ASSERT_TRUE(registry_->Reload().ok());
  EXPECT_EQ(auth_->Recheck(*caller, method).code(), absl::StatusCode::kPermissionDenied);

  Write(file(""));
  ASSERT_TRUE(registry_->Reload().ok());
  absl::StatusOr<Caller> unlimited = auth_->Check(method, Bearer(token));
  ASSERT_TRUE(unlimited.ok()) << unlimited.status();
  EXPECT_FALSE(unlimited->limited());
  Write(file("practices=north,south"));
  ASSERT_TRUE(registry_->Reload().ok());
  EXPECT_EQ(auth_->Recheck(*unlimited, method).code(), absl::StatusCode::kPermissionDenied);
}

TEST_F(AuthenticatorTest, ACertificateSubjectAuthenticates) {
  CallCredentials credentials;
  credentials.cert_subjects = {"Jane Doe"};
  absl::StatusOr<Caller> caller = auth_->Check("/outreach.v1.EventLog/VerifyLog", credentials);
  ASSERT_TRUE(caller.ok()) << caller.status();
  EXPECT_EQ(caller->principal, "cert-only");
  credentials.cert_subjects = {"Mallory"};
  EXPECT_EQ(auth_->Check("/outreach.v1.EventLog/VerifyLog", credentials).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(AuthenticatorTest, HealthIsOpenAndReflectionNeedsAnyPrincipal) {
  EXPECT_TRUE(auth_->Check("/grpc.health.v1.Health/Check", {}).ok());
  EXPECT_TRUE(auth_->Check("/grpc.health.v1.Health/Watch", Bearer("guess")).ok());
  const std::string reflection = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";
  EXPECT_EQ(auth_->Check(reflection, {}).status().code(), absl::StatusCode::kUnauthenticated);
  for (Role role : kEveryRole) {
    EXPECT_TRUE(auth_->Check(reflection, Bearer(TokenOf(role))).ok()) << RoleName(role);
  }
}

TEST_F(AuthenticatorTest, AMethodOutsideTheTableIsDeniedEvenToAdmin) {
  EXPECT_EQ(auth_->Check("/outreach.v1.TaskService/DeleteEverything",
                         Bearer("admin-token-0123456789abcdef"))
                .status()
                .code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_FALSE(Allowed("/outreach.v1.TaskService/DeleteEverything", kAllRoles));
}

TEST_F(AuthenticatorTest, OnlyServicePrincipalsMayActOnBehalfOfSomeone) {
  const std::string method = "/outreach.v1.TaskService/GetTask";
  for (Role role : kEveryRole) {
    CallCredentials credentials = Bearer(TokenOf(role));
    credentials.on_behalf_of = "nurse-7";
    absl::StatusOr<Caller> caller = auth_->Check(method, credentials);
    if (role == Role::kService) {
      ASSERT_TRUE(caller.ok()) << caller.status();
      EXPECT_EQ(caller->principal, "svc-1");
      EXPECT_EQ(caller->on_behalf_of, "nurse-7");
    } else {
      EXPECT_EQ(caller.status().code(), absl::StatusCode::kPermissionDenied) << RoleName(role);
    }
  }
  CallCredentials malformed = Bearer("svc-token-0123456789abcdef");
  malformed.on_behalf_of = "nurse 7; drop";
  EXPECT_EQ(auth_->Check(method, malformed).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(AuthenticatorTest, RevocationAndRoleChangesApplyFromTheNextCallAfterReload) {
  const std::string list = "/outreach.v1.TaskService/ListTasks";
  ASSERT_TRUE(auth_->Check(list, Bearer("coord-token-0123456789abcdef")).ok());
  ASSERT_EQ(auth_->Check(list, Bearer("auditor-token-0123456789abcdef")).status().code(),
            absl::StatusCode::kPermissionDenied);
  Write(absl::StrCat("auditor-1 auditor,coordinator ", HashHex("auditor-token-0123456789abcdef"),
                     "\n"));
  ASSERT_TRUE(registry_->Reload().ok());
  EXPECT_EQ(auth_->Check(list, Bearer("coord-token-0123456789abcdef")).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(auth_->Check(list, Bearer("auditor-token-0123456789abcdef")).ok());
}

TEST(DevelopmentModeTest, EveryTabledMethodIsAllowedAsTheClaimedActorOrAnonymous) {
  const Authenticator auth(nullptr);
  EXPECT_TRUE(auth.development());
  absl::StatusOr<Caller> caller = auth.Check("/outreach.v1.TaskService/CreateTask", {});
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(caller->principal, "anonymous");
  EXPECT_TRUE(caller->development);
  CallCredentials credentials;
  credentials.x_actor = "dev-alice";
  caller = auth.Check("/outreach.v1.EventLog/ReadAccessLog", credentials);
  ASSERT_TRUE(caller.ok());
  EXPECT_EQ(caller->principal, "dev-alice");
  EXPECT_EQ(auth.Check("/outreach.v1.Nope/Nope", {}).status().code(),
            absl::StatusCode::kPermissionDenied);
}

TEST(LoopbackTest, OnlyLoopbackAddressesAreLoopback) {
  for (const char* address : {"127.0.0.1:50051", "127.8.9.10:1", "localhost:50051",
                              "LOCALHOST:1", "[::1]:50051", "::1", "unix:/tmp/outreach.sock",
                              "unix-abstract:outreach", "ipv4:127.0.0.1:5"}) {
    EXPECT_TRUE(IsLoopbackAddress(address)) << address;
  }
  for (const char* address : {"0.0.0.0:50051", "[::]:50051", "10.0.0.5:50051",
                              "example.com:443", ":50051", "128.0.0.1:1", "127.0.0.1.evil:1",
                              "127.0.0.256:1"}) {
    EXPECT_FALSE(IsLoopbackAddress(address)) << address;
  }
}

// ---- TLS and mTLS --------------------------------------------------------------------------

// A GetTask that answers with the caller's verified certificate subjects (CertSubjects), so that
// a test sees what the server sees.
class SubjectEcho final : public v1::TaskService::CallbackService {
  grpc::ServerUnaryReactor* GetTask(grpc::CallbackServerContext* context,
                                    const v1::GetTaskRequest*, v1::Task* task) override {
    task->set_task_id(absl::StrJoin(CertSubjects(*context->auth_context()), "|"));
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<testing::TestCa> ca = testing::TestCa::Create("outreach test CA");
    absl::StatusOr<testing::TestCa> other = testing::TestCa::Create("someone else's CA");
    ASSERT_TRUE(ca.ok()) << ca.status();
    ASSERT_TRUE(other.ok()) << other.status();
    ca_.emplace(*std::move(ca));
    other_ca_.emplace(*std::move(other));
    absl::StatusOr<testing::PemPair> server =
        ca_->Issue("localhost", {"DNS:localhost", "IP:127.0.0.1"}, /*server=*/true);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }

  void Start(bool mtls) {
    grpc::SslServerCredentialsOptions options(
        mtls ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
             : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
    options.pem_key_cert_pairs.push_back({server_.key, server_.cert});
    if (mtls) options.pem_root_certs = ca_->root().cert;
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::SslServerCredentials(options), &port);
    builder.RegisterService(&echo_);
    server_handle_ = builder.BuildAndStart();
    ASSERT_NE(server_handle_, nullptr);
    target_ = absl::StrCat("127.0.0.1:", port);
  }

  void TearDown() override {
    if (server_handle_) server_handle_->Shutdown(std::chrono::system_clock::now());
  }

  // Calls GetTask; returns the status and, through `subjects`, what the server saw.
  grpc::Status Call(const std::string& roots, const testing::PemPair* client,
                    std::string* subjects = nullptr) {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = roots;
    if (client != nullptr) {
      options.pem_private_key = client->key;
      options.pem_cert_chain = client->cert;
    }
    grpc::ChannelArguments args;
    args.SetSslTargetNameOverride("localhost");
    auto channel = grpc::CreateCustomChannel(target_, grpc::SslCredentials(options), args);
    auto stub = v1::TaskService::NewStub(channel);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    v1::GetTaskRequest request;
    v1::Task task;
    grpc::Status status = stub->GetTask(&context, request, &task);
    if (subjects != nullptr) *subjects = task.task_id();
    return status;
  }

  std::optional<testing::TestCa> ca_;
  std::optional<testing::TestCa> other_ca_;
  testing::PemPair server_;
  SubjectEcho echo_;
  std::unique_ptr<grpc::Server> server_handle_;
  std::string target_;
};

TEST_F(TlsTest, AClientThatTrustsTheCaConnectsOverTls) {
  Start(/*mtls=*/false);
  std::string subjects;
  const grpc::Status status = Call(ca_->root().cert, nullptr, &subjects);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(subjects, "");  // no client certificate, no subjects
}

TEST_F(TlsTest, AClientThatTrustsAnotherCaFailsTheHandshake) {
  Start(/*mtls=*/false);
  EXPECT_EQ(Call(other_ca_->root().cert, nullptr).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, MutualTlsAcceptsACertificateFromTheClientCaAndSeesItsSubjects) {
  Start(/*mtls=*/true);
  absl::StatusOr<testing::PemPair> client =
      ca_->Issue("svc-billing", {"DNS:billing.internal"}, /*server=*/false);
  ASSERT_TRUE(client.ok()) << client.status();
  std::string subjects;
  const grpc::Status status = Call(ca_->root().cert, &*client, &subjects);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_THAT(std::vector<std::string>(absl::StrSplit(subjects, '|')),
              UnorderedElementsAre("svc-billing", "billing.internal"));
}

TEST_F(TlsTest, MutualTlsRefusesAClientWithoutACertificate) {
  Start(/*mtls=*/true);
  EXPECT_EQ(Call(ca_->root().cert, nullptr).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, MutualTlsRefusesACertificateFromAnotherCa) {
  Start(/*mtls=*/true);
  absl::StatusOr<testing::PemPair> client =
      other_ca_->Issue("svc-billing", {"DNS:billing.internal"}, /*server=*/false);
  ASSERT_TRUE(client.ok()) << client.status();
  EXPECT_EQ(Call(ca_->root().cert, &*client).error_code(), grpc::StatusCode::UNAVAILABLE);
}

}  // namespace
}  // namespace outreach::server
