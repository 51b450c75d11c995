// Who may call what: principals, the role table, and the per-call authentication check.
//
// Principals file (--principals FILE), format 2 (format 1, without `practices`, reads the same).
// One principal per line; '#' starts a comment line; blank lines are ignored; fields are
// separated by spaces or tabs:
//
//   line         := principal_id SP roles SP token_sha256 [SP practices] [SP cert_subject]
//   principal_id := 1-64 characters of [A-Za-z0-9._:-], not starting with "system:" (reserved
//                   for the service's own actors, e.g. system:expiry)  (the event's actor)
//   roles        := role ("," role)*     role := coordinator | service | auditor | admin
//   token_sha256 := 64 hex digits: SHA-256 of the bearer token (printf %s TOKEN | sha256sum),
//                   or "-" for a principal that authenticates by client certificate only
//   practices    := "practices=" practice_id ("," practice_id)*
//                   the principal sees and changes only the tasks of these practices (each an
//                   id: 1-64 characters of [A-Za-z0-9._:-]); absent = every practice
//   cert_subject := the rest of the line: a client certificate's subject CN or one of its DNS
//                   subjectAltNames (only with mTLS, --tls-client-ca); email, URI and IP SANs
//                   never name a principal. (A subject that itself starts with "practices=" cannot
//                   be written: that field is read as `practices`.)
//
// Tokens are at least kMinTokenLength characters (a shorter or empty bearer token is refused
// at every call), and a token_sha256 equal to the SHA-256 of the empty string is refused as a
// line error: it is what `printf %s "$TOKEN" | sha256sum` gives when $TOKEN was not set.
// No plain token is ever on disk. Ids, token hashes and certificate subjects are unique in a
// file. A file with a syntax error, a duplicate or no principal at all is refused as a whole,
// naming the line: PrincipalRegistry::Reload then keeps the previous principals.
//
// Thread safety: Principals is immutable once built. PrincipalRegistry swaps a shared_ptr to an
// immutable snapshot under a mutex, so a reload (SIGHUP) never changes a snapshot a call is
// using. Authenticator is thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"

namespace grpc {
class AuthContext;
}  // namespace grpc

namespace outreach::server {

// The shortest bearer token accepted (characters after "Bearer "). 32 random bytes in base64,
// the README's recipe, are 44.
inline constexpr std::size_t kMinTokenLength = 24;

enum class Role : uint32_t {
  kCoordinator = 1u << 0,
  kService = 1u << 1,
  kAuditor = 1u << 2,
  kAdmin = 1u << 3,
};
// A set of roles, as a bit mask of Role values.
using RoleSet = uint32_t;
inline constexpr RoleSet Roles(Role role) { return static_cast<RoleSet>(role); }
inline constexpr RoleSet operator|(Role a, Role b) { return Roles(a) | Roles(b); }
inline constexpr RoleSet operator|(RoleSet a, Role b) { return a | Roles(b); }
inline constexpr RoleSet kAllRoles =
    Role::kCoordinator | Role::kService | Role::kAuditor | Role::kAdmin;
inline constexpr Role kEveryRole[] = {Role::kCoordinator, Role::kService, Role::kAuditor,
                                      Role::kAdmin};

absl::string_view RoleName(Role role);
std::optional<Role> ParseRole(absl::string_view name);
// "coordinator,service" in kEveryRole order.
std::string RoleSetName(RoleSet roles);

struct Principal {
  std::string id;
  RoleSet roles = 0;
  std::string token_sha256;  // 32 raw bytes; empty for a certificate-only principal
  std::string cert_subject;  // empty when the principal has no certificate
  std::vector<std::string> practices;  // sorted, each once; empty = every practice
  bool Has(Role role) const { return (roles & Roles(role)) != 0; }
};

// One parsed principals file. Immutable.
class Principals {
 public:
  // INVALID_ARGUMENT naming the line on any error (see the format above).
  static absl::StatusOr<std::shared_ptr<const Principals>> Parse(absl::string_view text);

  // The principal whose token_sha256 is SHA-256(token). Every entry is compared in constant
  // time, and all of them are, so the time taken says nothing about which one matched.
  const Principal* FindByToken(absl::string_view token) const;
  // The principal whose cert_subject equals one of `subjects` (a certificate's CN and SANs).
  const Principal* FindByCertSubject(absl::Span<const std::string> subjects) const;
  const Principal* FindById(absl::string_view id) const;
  std::size_t size() const { return principals_.size(); }

 private:
  std::vector<Principal> principals_;
};

// The principals file and its current snapshot. Thread-safe.
class PrincipalRegistry {
 public:
  // Reads and parses `path`: NOT_FOUND if it cannot be read, INVALID_ARGUMENT if it is bad.
  static absl::StatusOr<std::unique_ptr<PrincipalRegistry>> Load(std::string path);

  // Re-reads the file. On success the new snapshot replaces the old one for every later call;
  // on error the old snapshot stays and the error (for the log) says why.
  absl::Status Reload();
  std::shared_ptr<const Principals> Current() const;
  const std::string& path() const { return path_; }

 private:
  PrincipalRegistry(std::string path, std::shared_ptr<const Principals> principals);
  const std::string path_;
  mutable absl::Mutex mu_;
  std::shared_ptr<const Principals> current_ ABSL_GUARDED_BY(mu_);
};

// The role table: THE one place that says who may call each RPC. Anything not in it is denied.
enum class Access {
  kOpen,           // no credentials needed (health checking)
  kAuthenticated,  // any authenticated principal (reflection)
  kRoles,          // a principal holding one of `roles`
};
struct MethodRule {
  absl::string_view method;  // full gRPC method name, "/package.Service/Method"
  Access access;
  RoleSet roles;  // for kRoles
};
absl::Span<const MethodRule> MethodTable();
// nullptr when `method` is not in the table.
const MethodRule* FindMethodRule(absl::string_view method);
// Whether a principal holding `roles` may call `method` (false for methods not in the table).
bool Allowed(absl::string_view method, RoleSet roles);

// What a call presents.
struct CallCredentials {
  std::string authorization;               // the "authorization" metadata ("Bearer <token>")
  std::vector<std::string> cert_subjects;  // a verified client certificate's CN and SANs
  std::string on_behalf_of;                // "x-on-behalf-of" metadata
  std::string x_actor;                     // "x-actor" metadata (development mode only)
};

// Who is calling, once authenticated and authorized.
struct Caller {
  std::string principal;     // the event's actor; empty for an open method's anonymous caller
  RoleSet roles = 0;
  std::string on_behalf_of;  // set only for service principals (or in development mode)
  bool development = false;  // no principals file: local-development mode
  // How the principal authenticated: the SHA-256 of its token, or its certificate subject.
  // Authenticator::Recheck compares it with the current principals file.
  std::string token_sha256;
  std::string cert_subject;
  // The practices the principal is limited to (sorted, each once); empty = every practice
  // (always so in development mode).
  std::vector<std::string> practices;
  bool limited() const { return !practices.empty(); }
  // The "x-practice-id" metadata a router routed the call by (empty: none sent). A request that
  // names another practice is refused (CheckPracticeAccess).
  std::string routed_practice;
  // Whether the caller may see and change the tasks of `practice_id` (empty = "default").
  bool MaySee(absl::string_view practice_id) const;
};

// PERMISSION_DENIED naming practice_id unless caller.MaySee(practice_id): "practice_id:
// principal P is limited to practices a, b (not "c")". Then INVALID_ARGUMENT if the call was
// routed by an x-practice-id other than practice_id (empty = "default"): the request contradicts
// the route it took, so a router's table and a client's requests that disagree cannot put a
// practice's events on the wrong shard (README "Scaling"). INVALID_ARGUMENT rather than
// FAILED_PRECONDITION: the call is wrong whatever the server's state, and retrying it cannot help.
absl::Status CheckPracticeAccess(const Caller& caller, absl::string_view practice_id);
// The second half of CheckPracticeAccess alone: INVALID_ARGUMENT if the call's x-practice-id is
// set and is not practice_id (empty = "default").
absl::Status CheckRoute(const Caller& caller, absl::string_view practice_id);

class Authenticator {
 public:
  // `registry` nullptr: local-development mode (the server then listens on loopback only):
  // every method in the table is allowed, and the actor is x-actor or "anonymous".
  explicit Authenticator(const PrincipalRegistry* registry) : registry_(registry) {}

  bool development() const { return registry_ == nullptr; }

  // Authenticates and authorizes one call of `method`:
  //  - a method outside the table: PERMISSION_DENIED (deny by default);
  //  - an open method: OK with an anonymous Caller, whatever the credentials;
  //  - no credentials, a malformed authorization header, a token shorter than
  //    kMinTokenLength, an unknown token or certificate: UNAUTHENTICATED;
  //  - a principal whose roles the table does not allow: PERMISSION_DENIED;
  //  - x-on-behalf-of from a principal without the service role: PERMISSION_DENIED; a malformed
  //    one: INVALID_ARGUMENT.
  // In that order: credentials are checked before anything else the call carries.
  // `authenticated`, if not null, receives the principal's id once the credentials name one
  // (also when the call is then refused), for the log of refused calls.
  absl::StatusOr<Caller> Check(absl::string_view method, const CallCredentials& credentials,
                               std::string* authenticated = nullptr) const;

  // Whether `caller` (from Check) may still call `method` under the current principals, for a
  // call that outlives a reload (a stream): UNAUTHENTICATED if the principal is gone or no longer
  // holds the token or certificate subject it authenticated with, PERMISSION_DENIED if it lost
  // the role (or the service role that x-on-behalf-of needs) or a practice it could see when
  // the call started (an unlimited principal that became limited included). OK in development
  // mode.
  absl::Status Recheck(const Caller& caller, absl::string_view method) const;

 private:
  const PrincipalRegistry* const registry_;
};

// True when a --listen address can only be reached from this host: a unix socket, localhost,
// 127.0.0.0/8 or ::1. Wildcards (0.0.0.0, [::]) and every other address are not.
bool IsLoopbackAddress(absl::string_view listen_address);

// A verified client certificate's subject CN and DNS SANs from a call's auth context (empty
// unless the peer presented a certificate the server verified). Other SAN types are left out.
std::vector<std::string> CertSubjects(const grpc::AuthContext& context);

}  // namespace outreach::server
