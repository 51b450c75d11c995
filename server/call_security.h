// CallSecurity: what every handler does first and, for reads of patient data, last.
//
//  - Authorize(context, method) at the top of every handler (ours and reflection): collects the
//    call's credentials (authorization metadata, a verified client certificate's subjects,
//    x-on-behalf-of, x-actor) and asks the Authenticator (server/auth.h), whose MethodTable() is
//    the one role table. A refused call is finished with the status and touches nothing.
//  - RecordAccess(...) before a call returns patient data: appends the access record
//    (store/access_log.h) and calls back once it is durable; only then does the handler send the
//    data. If the append fails the call fails UNAVAILABLE and returns nothing: a server that
//    cannot audit a read does not serve it. A write call that answers with tasks hands its
//    record to the store instead (WriteAccessOf), which writes it with the call's events.
//
// Two modes:
//  - With principals (--principals): the actor is the authenticated principal. x-actor is
//    refused (INVALID_ARGUMENT), so that a client that believes it names the actor learns at once
//    that it does not. x-on-behalf-of is accepted from service principals only.
//  - Local development (no --principals; the server then listens on loopback only): every caller
//    holds every role, the actor is x-actor (validated by ResolveActor) or "anonymous".
// Reads are recorded in both modes. Without an access log (a server started read-only for
// investigation, whose database is opened read-only and cannot take a record) each record is
// written to the server's log (stderr) instead; outreachd says so at start-up.
//
// Thread-safe; the Authenticator and the AccessLog must outlive it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "outreach/v1/events.pb.h"
#include "server/auth.h"
#include "store/event_store.h"
#include "server/call_observer.h"
#include "server/refusal_log.h"
#include "store/access_log.h"

namespace outreach::server {

inline constexpr char kAuthorizationMetadataKey[] = "authorization";
inline constexpr char kOnBehalfOfMetadataKey[] = "x-on-behalf-of";
// The practice a router (deploy/router/) routed the call by; see CheckPracticeAccess.
inline constexpr char kPracticeIdMetadataKey[] = "x-practice-id";

class CallSecurity {
 public:
  // `access_log` nullptr: reads are recorded on stderr only (see above). `refusals` nullptr:
  // refused calls are neither counted nor logged (tests); outreachd always passes one.
  // `observer` nullptr: callers are not noted for the request log (server/call_observer.h).
  CallSecurity(const Authenticator* authenticator, store::AccessLog* access_log,
               RefusalLog* refusals = nullptr, CallObserver* observer = nullptr)
      : authenticator_(authenticator),
        access_log_(access_log),
        refusals_(refusals),
        observer_(observer) {}
  CallSecurity(const CallSecurity&) = delete;
  CallSecurity& operator=(const CallSecurity&) = delete;

  // Who is calling `method` (full name, "/outreach.v1.TaskService/GetTask"), if allowed:
  // UNAUTHENTICATED (missing, repeated, short or unknown credentials), PERMISSION_DENIED (the
  // role table or x-on-behalf-of from a non-service principal), INVALID_ARGUMENT (malformed or
  // repeated x-on-behalf-of or x-actor; x-actor at all when principals are configured), in that
  // order: the credentials are judged before any other metadata. A malformed or repeated
  // x-practice-id is INVALID_ARGUMENT; a valid one is Caller::routed_practice. Every refusal
  // goes to the RefusalLog (counted, and logged at a limited rate).
  absl::StatusOr<Caller> Authorize(const grpc::CallbackServerContext& context,
                                   absl::string_view method) const;

  // For a call that outlives a reload of the principals (a stream), before each page it sends:
  // see Authenticator::Recheck.
  absl::Status Recheck(const Caller& caller, absl::string_view method) const {
    return authenticator_->Recheck(caller, method);
  }

  bool development() const { return authenticator_->development(); }
  bool records_access() const { return access_log_ != nullptr; }

  // What one read returned, for its access record.
  struct Access {
    std::vector<std::string> task_ids;  // the tasks whose data it returns
    std::string filter;                 // list and log reads: the query, as text
    uint64_t count = 0;                 // tasks or events returned
  };
  using Then = absl::AnyInvocable<void(absl::Status) &&>;
  // Appends the access record of `caller`'s read through `method` and calls `then` with OK once
  // it is durable, or with UNAVAILABLE (the call must then fail and send nothing). `then` runs on
  // the access log's writer thread (or at once without an access log): it must not block.
  void RecordAccess(const Caller& caller, const grpc::CallbackServerContext& context,
                    absl::string_view method, Access access, Then then) const;
  // For a write call that answers with the tasks it changed: its access record, which the store
  // writes in the batch of the call's events (EventStore::Submit with a WriteAccess), admitting
  // only tasks of the caller's practices. Only when records_access().
  store::WriteAccess WriteAccessOf(const Caller& caller,
                                   const grpc::CallbackServerContext& context,
                                   absl::string_view method) const;

 private:
  // Authorize without the refusal log; `principal` receives the authenticated id, if any.
  absl::StatusOr<Caller> Identify(const grpc::CallbackServerContext& context,
                                  absl::string_view method, std::string* principal) const;

  const Authenticator* const authenticator_;
  store::AccessLog* const access_log_;
  RefusalLog* const refusals_;
  CallObserver* const observer_;
};

// A request as access-record text: its known fields only (unknown fields a client sends are
// dropped, so that nobody can plant text or bulk in the audit trail), cut to the access log's
// filter limit (store::kMaxAccessFilterBytes).
std::string FilterText(const google::protobuf::Message& request);
// The same, naming the patient by its pseudonym when `store` is encrypted (README "Privacy"), so
// that the access log keeps no patient id an erasure would leave behind.
std::string FilterText(const google::protobuf::Message& request, const store::EventStore& store);

// The access record of a page of events about to be returned: the distinct tasks in order of
// first appearance, `request` (the call's request as text) with the page's positions, the count.
// `events` must not be empty.
CallSecurity::Access AccessOfEvents(const std::vector<v1::EventRecord>& events,
                                    absl::string_view request);

}  // namespace outreach::server
