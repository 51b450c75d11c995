// Translation of API requests into domain commands and store queries, at the edge.
//
// Every function here checks what the request alone can tell (ids, enum values, dates, page
// sizes) and returns INVALID_ARGUMENT naming the field, so that bad input never reaches the
// store's writer. Nothing here knows gRPC transport types; pure functions, thread-safe.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "domain/task_rules.h"
#include "outreach/v1/event_log.pb.h"
#include "outreach/v1/patient_service.pb.h"
#include "outreach/v1/task_service.pb.h"
#include "store/access_log.h"
#include "store/event_store.h"
#include "store/worklist.h"

namespace outreach::server {

// The actor recorded when the caller does not say who it is.
inline constexpr char kAnonymousActor[] = "anonymous";
// The metadata key naming the caller in local-development mode (no --principals); with
// principals the actor is the authenticated principal and x-actor is refused.
inline constexpr char kActorMetadataKey[] = "x-actor";

inline constexpr int kDefaultPageSize = 50;
// The largest page: the store's (store/worklist.h), which ListTasks also enforces.
using store::kMaxPageSize;

// The caller's identity from the x-actor metadata value (nullopt = not sent): a valid id, and not
// one of the service's own "system:" actors. "anonymous" when absent.
absl::StatusOr<std::string> ResolveActor(std::optional<absl::string_view> x_actor);

// A fresh task id: a random UUID (version 4), 36 characters of [0-9a-f-].
std::string NewTaskId();

// Requests -> commands. `actor` must come from ResolveActor. The command has passed
// domain::ValidateShape. An empty task_id in CreateTask is replaced by NewTaskId().
absl::StatusOr<domain::CreateTaskCommand> ToCommand(const v1::CreateTaskRequest& request,
                                                    std::string actor);
absl::StatusOr<domain::LogContactCommand> ToCommand(const v1::LogContactRequest& request,
                                                    std::string actor);
absl::StatusOr<domain::AssignTaskCommand> ToCommand(const v1::AssignTaskRequest& request,
                                                    std::string actor);
absl::StatusOr<domain::ClaimTaskCommand> ToCommand(const v1::ClaimTaskRequest& request,
                                                   std::string actor);
absl::StatusOr<domain::ResolveTasksCommand> ToCommand(const v1::ResolveTasksRequest& request,
                                                      std::string actor);
absl::StatusOr<domain::SetContactPreferenceCommand> ToCommand(
    const v1::SetContactPreferenceRequest& request, std::string actor);
absl::StatusOr<domain::ErasePatientCommand> ToCommand(const v1::ErasePatientRequest& request,
                                                      std::string actor);
absl::StatusOr<domain::CancelTaskCommand> ToCommand(const v1::CancelTaskRequest& request,
                                                    std::string actor);

// A worklist query: page_size 0 means kDefaultPageSize; statuses and categories must be real
// ones; practice_id an id (it becomes the query's one practice); unassigned not with assignee.
// The caller's practice limits are the service's to apply (server/task_service.cc).
absl::StatusOr<store::ListQuery> ToListQuery(const v1::ListTasksRequest& request);

// The idempotency fingerprint of a mutating request: SHA-256 over the method name, the actor
// and the deterministic serialization of the request with request_id cleared, and, when not
// empty, the x-on-behalf-of person (each part length-prefixed; an empty on_behalf_of adds
// nothing, so fingerprints kept before it existed still match). 32 raw bytes. The same request
// retried by the same caller for the same person fingerprints the same; anything else that
// reuses its request_id does not.
std::string Fingerprint(absl::string_view method, absl::string_view actor,
                        const v1::ResolveTasksRequest& request, absl::string_view on_behalf_of);
std::string Fingerprint(absl::string_view method, absl::string_view actor,
                        const v1::ErasePatientRequest& request, absl::string_view on_behalf_of);
std::string Fingerprint(absl::string_view method, absl::string_view actor,
                        const v1::SetContactPreferenceRequest& request,
                        absl::string_view on_behalf_of);
std::string Fingerprint(absl::string_view method, absl::string_view actor,
                        const v1::CreateTaskRequest& request,
                        absl::string_view on_behalf_of = "");
std::string Fingerprint(absl::string_view method, absl::string_view actor,
                        const v1::LogContactRequest& request,
                        absl::string_view on_behalf_of = "");
std::string Fingerprint(absl::string_view method, absl::string_view actor,
                        const v1::AssignTaskRequest& request,
                        absl::string_view on_behalf_of = "");
std::string Fingerprint(absl::string_view method, absl::string_view actor,
                        const v1::ClaimTaskRequest& request,
                        absl::string_view on_behalf_of = "");
std::string Fingerprint(absl::string_view method, absl::string_view actor,
                        const v1::CancelTaskRequest& request,
                        absl::string_view on_behalf_of = "");

// A stored access record as ReadAccessLog sends it, within the access log's limits
// (store::CapAccessRecord): a record written before the limits existed is cut here and marked
// `truncated`, so that any record fits in a response; `hash` is the stored record's.
v1::AccessRecord ToWireAccessRecord(store::StoredAccessRecord stored);

}  // namespace outreach::server
