#include "server/auth.h"

#include <algorithm>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "domain/task_rules.h"
#include "domain/validation.h"
#include "store/event_codec.h"
#include "grpc/grpc_security_constants.h"
#include "grpcpp/security/auth_context.h"
#include "openssl/crypto.h"

namespace outreach::server {
namespace {

// Ids the service records as its own actors (domain::kExpiryActor): no principal may hold one,
// and nobody acts on behalf of one.
constexpr absl::string_view kReservedIdPrefix = "system:";
// The optional field that limits a principal to practices.
constexpr absl::string_view kPracticesPrefix = "practices=";

constexpr RoleSet kReaders = Role::kCoordinator | Role::kService | Role::kAuditor | Role::kAdmin;
constexpr RoleSet kWorkers = Role::kCoordinator | Role::kService | Role::kAdmin;
constexpr RoleSet kAuditors = Role::kAuditor | Role::kAdmin;
constexpr RoleSet kConsumers = Role::kService | Role::kAuditor | Role::kAdmin;  // durable ones

// THE role table (README "Security" reproduces it). Keep it in one place.
constexpr MethodRule kMethodTable[] = {
    // TaskService
    {"/outreach.v1.TaskService/CreateTask", Access::kRoles, Role::kService | Role::kAdmin},
    {"/outreach.v1.TaskService/GetTask", Access::kRoles, kReaders},  // incl. as_of (auditor)
    {"/outreach.v1.TaskService/ListTasks", Access::kRoles, kWorkers},
    {"/outreach.v1.TaskService/LogContact", Access::kRoles, kWorkers},
    {"/outreach.v1.TaskService/AssignTask", Access::kRoles, kWorkers},
    {"/outreach.v1.TaskService/ClaimTask", Access::kRoles, Role::kCoordinator | Role::kAdmin},
    {"/outreach.v1.TaskService/CancelTask", Access::kRoles, kWorkers},
    {"/outreach.v1.TaskService/ResolveTasks", Access::kRoles, Role::kService | Role::kAdmin},
    // PatientService
    {"/outreach.v1.PatientService/SetContactPreference", Access::kRoles, kWorkers},
    {"/outreach.v1.PatientService/GetPatientOutreach", Access::kRoles, kWorkers},
    {"/outreach.v1.PatientService/ErasePatient", Access::kRoles, Roles(Role::kAdmin)},
    // EventLog: auditors' reads
    {"/outreach.v1.EventLog/ReadEvents", Access::kRoles, kAuditors},
    {"/outreach.v1.EventLog/SubscribeEvents", Access::kRoles, kAuditors},
    {"/outreach.v1.EventLog/VerifyLog", Access::kRoles, kAuditors},
    {"/outreach.v1.EventLog/GetTaskHistory", Access::kRoles, kAuditors},
    {"/outreach.v1.EventLog/ReadAccessLog", Access::kRoles, kAuditors},
    {"/outreach.v1.EventLog/Follow", Access::kRoles, kConsumers},
    {"/outreach.v1.EventLog/AckEvents", Access::kRoles, kConsumers},
    {"/outreach.v1.EventLog/ListConsumers", Access::kRoles, kConsumers},
    // ReportService: no patient data, every role
    {"/outreach.v1.ReportService/GetOutreachStats", Access::kRoles, kReaders},
    // Operations (issue 15): a live backup into the server's --backup-dir.
    {"/outreach.v1.AdminService/CreateBackup", Access::kRoles, Roles(Role::kAdmin)},
    // Standard services
    {"/grpc.health.v1.Health/Check", Access::kOpen, 0},
    {"/grpc.health.v1.Health/Watch", Access::kOpen, 0},
    {"/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", Access::kAuthenticated, 0},
    {"/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", Access::kAuthenticated, 0},
};

std::string Sha256(absl::string_view bytes) {
  return std::string(store::AsBytes(store::Sha256(bytes)));
}

bool IsHex(absl::string_view text) {
  for (char c : text) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

// "practices=a,b": the practices, sorted and each once. INVALID_ARGUMENT on a bad list.
absl::StatusOr<std::vector<std::string>> ParsePractices(absl::string_view field) {
  absl::ConsumePrefix(&field, kPracticesPrefix);
  std::vector<std::string> practices;
  for (absl::string_view practice : absl::StrSplit(field, ',')) {
    if (!domain::IsValidId(practice)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "practices: \"", practice,
          "\" is not a practice id (want practices=id,id,... with ids of 1-64 characters of "
          "[A-Za-z0-9._:-])"));
    }
    practices.emplace_back(practice);
  }
  std::sort(practices.begin(), practices.end());
  practices.erase(std::unique(practices.begin(), practices.end()), practices.end());
  return practices;
}

// The next field of `rest` (which moves past it), after leading spaces.
std::string NextField(absl::string_view& rest) {
  rest = absl::StripLeadingAsciiWhitespace(rest);
  std::size_t end = 0;
  while (end < rest.size() && !absl::ascii_isspace(static_cast<unsigned char>(rest[end]))) {
    ++end;
  }
  std::string field(rest.substr(0, end));
  rest = rest.substr(end);
  return field;
}

// The optional fields after the token hash: practices=..., then the certificate subject.
absl::Status ParseOptionalFields(absl::string_view rest, Principal& principal) {
  rest = absl::StripAsciiWhitespace(rest);
  if (absl::StartsWith(rest, kPracticesPrefix)) {
    absl::StatusOr<std::vector<std::string>> practices = ParsePractices(NextField(rest));
    if (!practices.ok()) return practices.status();
    principal.practices = *std::move(practices);
  }
  principal.cert_subject = std::string(absl::StripAsciiWhitespace(rest));
  return absl::OkStatus();
}

absl::StatusOr<Principal> ParseLine(absl::string_view line) {
  // Three fields, then the rest of the line (the certificate subject may hold spaces).
  Principal principal;
  absl::string_view rest = line;
  std::string fields[3];
  for (std::string& field : fields) field = NextField(rest);
  if (fields[2].empty()) {
    return absl::InvalidArgumentError(
        "want: principal_id roles token_sha256 [practices=id,...] [cert_subject]");
  }
  if (!domain::IsValidId(fields[0])) {
    return absl::InvalidArgumentError(absl::StrCat(
        "principal id \"", fields[0], "\" must be 1-64 characters of [A-Za-z0-9._:-]"));
  }
  if (absl::StartsWith(fields[0], kReservedIdPrefix)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "principal id \"", fields[0], "\": ids starting with \"", kReservedIdPrefix,
        "\" are reserved for the service's own actors"));
  }
  principal.id = fields[0];
  for (absl::string_view name : absl::StrSplit(fields[1], ',')) {
    std::optional<Role> role = ParseRole(name);
    if (!role.has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown role \"", name, "\" (want coordinator, service, auditor or admin)"));
    }
    principal.roles |= Roles(*role);
  }
  if (fields[2] != "-") {
    if (fields[2].size() != 2 * store::kHashSize || !IsHex(fields[2])) {
      return absl::InvalidArgumentError(
          "token_sha256 must be 64 hex digits (the SHA-256 of the token) or \"-\"");
    }
    principal.token_sha256 = absl::HexStringToBytes(absl::AsciiStrToLower(fields[2]));
    if (principal.token_sha256 == Sha256("")) {
      return absl::InvalidArgumentError(
          "token_sha256 is the SHA-256 of the empty string (was the token variable unset when "
          "the hash was made?): generate a token and hash it again");
    }
  }
  if (absl::Status s = ParseOptionalFields(rest, principal); !s.ok()) return s;
  if (principal.token_sha256.empty() && principal.cert_subject.empty()) {
    return absl::InvalidArgumentError("a principal needs a token hash or a certificate subject");
  }
  return principal;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read principals file ", path));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::NotFoundError(absl::StrCat("cannot read principals file ", path));
  return text.str();
}

std::string Host(absl::string_view address) {
  if (absl::ConsumePrefix(&address, "[")) {
    const std::size_t end = address.find(']');
    return std::string(end == absl::string_view::npos ? address : address.substr(0, end));
  }
  const std::size_t colon = address.rfind(':');
  // More than one colon and no brackets: a bare IPv6 address without a port.
  if (colon != absl::string_view::npos && address.find(':') == colon) {
    return std::string(address.substr(0, colon));
  }
  return std::string(address);
}

}  // namespace

absl::string_view RoleName(Role role) {
  switch (role) {
    case Role::kCoordinator:
      return "coordinator";
    case Role::kService:
      return "service";
    case Role::kAuditor:
      return "auditor";
    case Role::kAdmin:
      return "admin";
  }
  return "unknown";
}

std::optional<Role> ParseRole(absl::string_view name) {
  for (Role role : kEveryRole) {
    if (RoleName(role) == name) return role;
  }
  return std::nullopt;
}

std::string RoleSetName(RoleSet roles) {
  std::vector<absl::string_view> names;
  for (Role role : kEveryRole) {
    if ((roles & Roles(role)) != 0) names.push_back(RoleName(role));
  }
  return absl::StrJoin(names, ",");
}

absl::StatusOr<std::shared_ptr<const Principals>> Principals::Parse(absl::string_view text) {
  auto principals = std::make_shared<Principals>();
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    absl::StatusOr<Principal> principal = ParseLine(line);
    auto at_line = [line_number](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("principals line ", line_number, ": ", why));
    };
    if (!principal.ok()) return at_line(principal.status().message());
    for (const Principal& other : principals->principals_) {
      if (other.id == principal->id) {
        return at_line(absl::StrCat("principal ", principal->id, " appears twice"));
      }
      if (!principal->token_sha256.empty() && other.token_sha256 == principal->token_sha256) {
        return at_line(absl::StrCat("token hash already belongs to ", other.id));
      }
      if (!principal->cert_subject.empty() && other.cert_subject == principal->cert_subject) {
        return at_line(absl::StrCat("certificate subject already belongs to ", other.id));
      }
    }
    principals->principals_.push_back(*std::move(principal));
  }
  if (principals->principals_.empty()) {
    return absl::InvalidArgumentError("principals file lists no principal");
  }
  return std::shared_ptr<const Principals>(std::move(principals));
}

const Principal* Principals::FindByToken(absl::string_view token) const {
  const std::string digest = Sha256(token);
  const Principal* found = nullptr;
  for (const Principal& principal : principals_) {
    // A certificate-only principal is compared against its own digest's complement, never equal,
    // so that every entry costs the same.
    const bool has_token = principal.token_sha256.size() == digest.size();
    const std::string& stored = has_token ? principal.token_sha256 : digest;
    const bool equal = CRYPTO_memcmp(stored.data(), digest.data(), digest.size()) == 0;
    if (equal && has_token) found = &principal;
  }
  return found;
}

const Principal* Principals::FindByCertSubject(absl::Span<const std::string> subjects) const {
  for (const Principal& principal : principals_) {
    if (principal.cert_subject.empty()) continue;
    for (const std::string& subject : subjects) {
      if (subject == principal.cert_subject) return &principal;
    }
  }
  return nullptr;
}

const Principal* Principals::FindById(absl::string_view id) const {
  for (const Principal& principal : principals_) {
    if (principal.id == id) return &principal;
  }
  return nullptr;
}

PrincipalRegistry::PrincipalRegistry(std::string path,
                                     std::shared_ptr<const Principals> principals)
    : path_(std::move(path)), current_(std::move(principals)) {}

absl::StatusOr<std::unique_ptr<PrincipalRegistry>> PrincipalRegistry::Load(std::string path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<std::shared_ptr<const Principals>> principals = Principals::Parse(*text);
  if (!principals.ok()) {
    return absl::Status(principals.status().code(),
                        absl::StrCat(path, ": ", principals.status().message()));
  }
  return std::unique_ptr<PrincipalRegistry>(
      new PrincipalRegistry(std::move(path), *std::move(principals)));
}

absl::Status PrincipalRegistry::Reload() {
  absl::StatusOr<std::string> text = ReadFile(path_);
  if (!text.ok()) return text.status();
  absl::StatusOr<std::shared_ptr<const Principals>> principals = Principals::Parse(*text);
  if (!principals.ok()) {
    return absl::Status(principals.status().code(),
                        absl::StrCat(path_, ": ", principals.status().message(),
                                     " (keeping the previous principals)"));
  }
  absl::MutexLock lock(&mu_);
  current_ = *std::move(principals);
  return absl::OkStatus();
}

std::shared_ptr<const Principals> PrincipalRegistry::Current() const {
  absl::MutexLock lock(&mu_);
  return current_;
}

absl::Span<const MethodRule> MethodTable() { return kMethodTable; }

const MethodRule* FindMethodRule(absl::string_view method) {
  for (const MethodRule& rule : kMethodTable) {
    if (rule.method == method) return &rule;
  }
  return nullptr;
}

bool Allowed(absl::string_view method, RoleSet roles) {
  const MethodRule* rule = FindMethodRule(method);
  if (rule == nullptr) return false;
  switch (rule->access) {
    case Access::kOpen:
    case Access::kAuthenticated:
      return true;
    case Access::kRoles:
      return (rule->roles & roles) != 0;
  }
  return false;
}

namespace {

absl::Status CheckOnBehalfOf(absl::string_view on_behalf_of) {
  if (on_behalf_of.empty() ||
      (domain::IsValidId(on_behalf_of) && !absl::StartsWith(on_behalf_of, kReservedIdPrefix))) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "x-on-behalf-of must be 1-64 characters of [A-Za-z0-9._:-], not starting with \"",
      kReservedIdPrefix, "\""));
}

// The principal the credentials name: UNAUTHENTICATED when none (see Authenticator::Check).
absl::StatusOr<const Principal*> Authenticate(const Principals& principals,
                                              const CallCredentials& credentials) {
  if (!credentials.authorization.empty()) {
    absl::string_view header = credentials.authorization;
    constexpr absl::string_view kBearer = "bearer ";
    if (header.size() <= kBearer.size() ||
        !absl::EqualsIgnoreCase(header.substr(0, kBearer.size()), kBearer)) {
      return absl::UnauthenticatedError("authorization metadata must be \"Bearer <token>\"");
    }
    const absl::string_view token = absl::StripAsciiWhitespace(header.substr(kBearer.size()));
    if (token.size() < kMinTokenLength) {
      return absl::UnauthenticatedError(
          absl::StrCat("bearer token too short (tokens are at least ", kMinTokenLength,
                       " characters)"));
    }
    const Principal* principal = principals.FindByToken(token);
    if (principal == nullptr) return absl::UnauthenticatedError("unknown bearer token");
    return principal;
  }
  if (!credentials.cert_subjects.empty()) {
    const Principal* principal = principals.FindByCertSubject(credentials.cert_subjects);
    if (principal == nullptr) {
      return absl::UnauthenticatedError("client certificate names no known principal");
    }
    return principal;
  }
  return absl::UnauthenticatedError(
      "missing credentials: send \"authorization: Bearer <token>\" or a client certificate");
}

}  // namespace

absl::StatusOr<Caller> Authenticator::Check(absl::string_view method,
                                            const CallCredentials& credentials,
                                            std::string* authenticated) const {
  const MethodRule* rule = FindMethodRule(method);
  if (rule == nullptr) {
    return absl::PermissionDeniedError(absl::StrCat(method, " is not in the role table"));
  }
  if (rule->access == Access::kOpen) return Caller{};
  if (registry_ == nullptr) {
    if (absl::Status s = CheckOnBehalfOf(credentials.on_behalf_of); !s.ok()) return s;
    Caller caller;
    caller.principal = credentials.x_actor.empty() ? "anonymous" : credentials.x_actor;
    caller.roles = kAllRoles;
    caller.on_behalf_of = credentials.on_behalf_of;
    caller.development = true;
    return caller;
  }

  // Credentials first: nothing else about a call is looked at before its caller is known.
  const std::shared_ptr<const Principals> principals = registry_->Current();
  absl::StatusOr<const Principal*> found = Authenticate(*principals, credentials);
  if (!found.ok()) return found.status();
  const Principal& principal = **found;
  if (authenticated != nullptr) *authenticated = principal.id;
  if (!Allowed(method, principal.roles)) {
    return absl::PermissionDeniedError(absl::StrCat("principal ", principal.id, " (",
                                                    RoleSetName(principal.roles),
                                                    ") may not call ", method));
  }
  if (!credentials.on_behalf_of.empty() && !principal.Has(Role::kService)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "principal ", principal.id, " may not use x-on-behalf-of (service principals only)"));
  }
  if (absl::Status s = CheckOnBehalfOf(credentials.on_behalf_of); !s.ok()) return s;
  Caller caller;
  caller.principal = principal.id;
  caller.roles = principal.roles;
  caller.on_behalf_of = credentials.on_behalf_of;
  caller.practices = principal.practices;
  if (!credentials.authorization.empty()) {
    caller.token_sha256 = principal.token_sha256;
  } else {
    caller.cert_subject = principal.cert_subject;
  }
  return caller;
}

namespace {

// PERMISSION_DENIED when `principal` (as reloaded) no longer sees every practice `caller` (as
// authenticated) could: what a stream it opened may have been sending.
absl::Status CheckStillSees(const Caller& caller, const Principal& principal) {
  if (principal.practices.empty()) return absl::OkStatus();
  const bool still = !caller.practices.empty() &&
                     std::includes(principal.practices.begin(), principal.practices.end(),
                                   caller.practices.begin(), caller.practices.end());
  if (still) return absl::OkStatus();
  return absl::PermissionDeniedError(absl::StrCat(
      "principal ", principal.id, " is now limited to practices ",
      absl::StrJoin(principal.practices, ", "), ", fewer than this call started with"));
}

}  // namespace

bool Caller::MaySee(absl::string_view practice_id) const {
  if (practices.empty()) return true;
  const absl::string_view practice =
      practice_id.empty() ? absl::string_view(domain::kDefaultPracticeId) : practice_id;
  return std::binary_search(practices.begin(), practices.end(), practice);
}

absl::Status CheckPracticeAccess(const Caller& caller, absl::string_view practice_id) {
  const absl::string_view practice =
      practice_id.empty() ? absl::string_view(domain::kDefaultPracticeId) : practice_id;
  if (!caller.MaySee(practice_id)) {
    return absl::PermissionDeniedError(
        absl::StrCat("practice_id: principal ", caller.principal, " is limited to practices ",
                     absl::StrJoin(caller.practices, ", "), " (not \"", practice, "\")"));
  }
  return CheckRoute(caller, practice_id);
}

absl::Status CheckRoute(const Caller& caller, absl::string_view practice_id) {
  const absl::string_view practice =
      practice_id.empty() ? absl::string_view(domain::kDefaultPracticeId) : practice_id;
  if (caller.routed_practice.empty() || caller.routed_practice == practice) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "x-practice-id: the call was routed for practice \"", caller.routed_practice,
      "\" but its request is about practice \"", practice,
      "\"; send the practice the request names"));
}

absl::Status Authenticator::Recheck(const Caller& caller, absl::string_view method) const {
  if (registry_ == nullptr || caller.principal.empty()) return absl::OkStatus();
  const std::shared_ptr<const Principals> principals = registry_->Current();
  const Principal* principal = principals->FindById(caller.principal);
  if (principal == nullptr) {
    return absl::UnauthenticatedError(absl::StrCat(
        "principal ", caller.principal, " was removed from the principals file"));
  }
  const bool same_credentials =
      caller.token_sha256.empty()
          ? !caller.cert_subject.empty() && principal->cert_subject == caller.cert_subject
          : principal->token_sha256 == caller.token_sha256;
  if (!same_credentials) {
    return absl::UnauthenticatedError(absl::StrCat(
        "the credentials principal ", caller.principal, " authenticated with were revoked"));
  }
  if (!caller.on_behalf_of.empty() && !principal->Has(Role::kService)) {
    return absl::PermissionDeniedError(absl::StrCat(
        "principal ", principal->id, " no longer holds the service role x-on-behalf-of needs"));
  }
  if (!Allowed(method, principal->roles)) {
    return absl::PermissionDeniedError(absl::StrCat("principal ", principal->id, " (",
                                                    RoleSetName(principal->roles),
                                                    ") may no longer call ", method));
  }
  return CheckStillSees(caller, *principal);
}

bool IsLoopbackAddress(absl::string_view listen_address) {
  if (absl::StartsWith(listen_address, "unix:") ||
      absl::StartsWith(listen_address, "unix-abstract:")) {
    return true;
  }
  absl::ConsumePrefix(&listen_address, "ipv4:");
  absl::ConsumePrefix(&listen_address, "ipv6:");
  const std::string host = absl::AsciiStrToLower(Host(listen_address));
  if (host == "localhost" || host == "::1" || host == "0:0:0:0:0:0:0:1") return true;
  // 127.0.0.0/8, written as a dotted quad.
  std::vector<absl::string_view> octets = absl::StrSplit(host, '.');
  if (octets.size() != 4 || octets[0] != "127") return false;
  for (absl::string_view octet : octets) {
    int value = 0;
    if (!absl::SimpleAtoi(octet, &value) || value < 0 || value > 255) return false;
  }
  return true;
}

std::vector<std::string> CertSubjects(const grpc::AuthContext& context) {
  std::vector<std::string> subjects;
  if (!context.IsPeerAuthenticated()) return subjects;
  // The subject CN and the DNS names among the SANs: an email, URI or IP SAN never names a
  // principal (a CA that issues email certificates to people must not mint service identities).
  for (const char* property : {GRPC_X509_CN_PROPERTY_NAME, GRPC_PEER_DNS_PROPERTY_NAME}) {
    for (const grpc::string_ref& value : context.FindPropertyValues(property)) {
      subjects.emplace_back(value.data(), value.size());
    }
  }
  return subjects;
}

}  // namespace outreach::server
