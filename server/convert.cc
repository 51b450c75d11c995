#include "server/convert.h"

#include <openssl/rand.h>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <vector>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "domain/validation.h"
#include "store/event_codec.h"
#include "store/uuid.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"

namespace outreach::server {
namespace {

// Actors the service writes itself (e.g. system:expiry); a caller must not impersonate them.
constexpr char kReservedActorPrefix[] = "system:";

// Quotes a client-supplied value for an error message, escaped and cut to a readable length.
std::string Quote(absl::string_view value) {
  constexpr std::size_t kMaxShown = 80;
  if (value.size() > kMaxShown) {
    return absl::StrCat("\"", absl::CHexEscape(value.substr(0, kMaxShown)), "\"... (",
                        value.size(), " bytes)");
  }
  return absl::StrCat("\"", absl::CHexEscape(value), "\"");
}

absl::StatusOr<std::optional<absl::Time>> OptionalTimestamp(absl::string_view field,
                                                            bool present,
                                                            const google::protobuf::Timestamp& ts) {
  if (!present) return std::optional<absl::Time>();
  absl::StatusOr<absl::Time> t = domain::ParseTimestamp(field, ts);
  if (!t.ok()) return t.status();
  return std::optional<absl::Time>(*t);
}

std::string DeterministicBytes(const google::protobuf::MessageLite& message) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream raw(&bytes);
    google::protobuf::io::CodedOutputStream out(&raw);
    out.SetSerializationDeterministic(true);
    message.SerializeWithCachedSizes(&out);
  }
  return bytes;
}

void AppendLengthPrefixed(std::string& out, absl::string_view part) {
  const uint64_t n = part.size();
  for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<char>(n >> shift));
  out.append(part.data(), part.size());
}

std::string FingerprintOf(absl::string_view method, absl::string_view actor,
                          const google::protobuf::MessageLite& request_without_id,
                          absl::string_view on_behalf_of) {
  // ByteSizeLong caches sizes for SerializeWithCachedSizes.
  request_without_id.ByteSizeLong();
  std::string input;
  AppendLengthPrefixed(input, method);
  AppendLengthPrefixed(input, actor);
  AppendLengthPrefixed(input, DeterministicBytes(request_without_id));
  // Only when set: fingerprints of requests without it stay what they were.
  if (!on_behalf_of.empty()) AppendLengthPrefixed(input, on_behalf_of);
  return std::string(store::AsBytes(store::Sha256(input)));
}

// Every mutating request fingerprints the same way: its bytes without the request_id.
template <class Request>
std::string FingerprintWithoutId(absl::string_view method, absl::string_view actor,
                                 const Request& request, absl::string_view on_behalf_of) {
  Request copy = request;
  copy.clear_request_id();
  return FingerprintOf(method, actor, copy, on_behalf_of);
}

// The cadence as the client sent it; the domain checks it.
std::vector<int32_t> CadenceOf(const v1::CreateTaskRequest& request) {
  return std::vector<int32_t>(request.cadence_days().begin(), request.cadence_days().end());
}

// ListTasks' issue 13 filters: practice_id (an id), categories (real categories), unassigned
// (not with an assignee).
absl::Status ListPracticeAndCategories(const v1::ListTasksRequest& request,
                                       store::ListQuery& query) {
  if (absl::Status s = domain::ValidateOptionalId("practice_id", request.practice_id());
      !s.ok()) {
    return s;
  }
  if (!request.practice_id().empty()) query.practice_ids = {request.practice_id()};
  for (int raw : request.categories()) {
    if (!v1::TaskCategory_IsValid(raw) || raw == v1::TASK_CATEGORY_UNSPECIFIED) {
      return absl::InvalidArgumentError(absl::StrCat(
          "categories: ", raw == v1::TASK_CATEGORY_UNSPECIFIED ? "TASK_CATEGORY_UNSPECIFIED"
                                                               : absl::StrCat(raw),
          " is not a category (want RECALL_OVERDUE, UNSCHEDULED_TREATMENT, PAST_DUE_BALANCE, "
          "BROKEN_APPOINTMENT, APPOINTMENT_CONFIRMATION, REACTIVATION or CUSTOM)"));
    }
    query.categories.push_back(static_cast<v1::TaskCategory>(raw));
  }
  if (request.unassigned() && !request.assignee().empty()) {
    return absl::InvalidArgumentError(
        "unassigned: cannot be combined with assignee (a task has one assignee or none)");
  }
  query.unassigned = request.unassigned();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> ResolveActor(std::optional<absl::string_view> x_actor) {
  if (!x_actor.has_value()) return std::string(kAnonymousActor);
  if (!domain::IsValidId(*x_actor)) {
    return absl::InvalidArgumentError(
        absl::StrCat(kActorMetadataKey, ": ", Quote(*x_actor),
                     " is not a valid actor id (want 1-64 characters of [A-Za-z0-9._:-])"));
  }
  if (absl::StartsWith(*x_actor, kReservedActorPrefix)) {
    return absl::InvalidArgumentError(absl::StrCat(kActorMetadataKey, ": ", Quote(*x_actor),
                                                   " is reserved for the service itself"));
  }
  return std::string(*x_actor);
}

std::string NewTaskId() {
  std::array<uint8_t, 16> b;
  if (RAND_bytes(b.data(), static_cast<int>(b.size())) != 1) {
    // OpenSSL's CSPRNG failing means the process cannot make ids safely at all.
    std::abort();
  }
  return store::UuidV4FromRandomBytes(b);
}

absl::StatusOr<domain::CreateTaskCommand> ToCommand(const v1::CreateTaskRequest& request,
                                                    std::string actor) {
  if (!v1::TaskKind_IsValid(request.kind())) {
    return absl::InvalidArgumentError(
        absl::StrCat("kind: ", request.kind(), " is not a TaskKind (want MANUAL or AUTOMATIC)"));
  }
  domain::CreateTaskCommand command;
  command.task_id = request.task_id().empty() ? NewTaskId() : request.task_id();
  command.patient_id = request.patient_id();
  command.kind = request.kind();
  command.title = request.title();
  command.assignee = request.assignee();
  command.follow_up_date = request.follow_up_date();
  absl::StatusOr<std::optional<absl::Time>> expires_at =
      OptionalTimestamp("expires_at", request.has_expires_at(), request.expires_at());
  if (!expires_at.ok()) return expires_at.status();
  command.expires_at = *expires_at;
  command.meta.actor = std::move(actor);
  command.meta.request_id = request.request_id();
  command.practice_id = request.practice_id();
  command.category = request.category();
  command.rule_id = request.rule_id();
  command.priority = request.priority();
  command.cadence_days = CadenceOf(request);
  command.max_attempts = request.max_attempts();
  absl::Status shape = domain::ValidateShape(command);
  if (!shape.ok()) return shape;
  return command;
}

absl::StatusOr<domain::LogContactCommand> ToCommand(const v1::LogContactRequest& request,
                                                    std::string actor) {
  if (!v1::ContactOutcome_IsValid(request.outcome())) {
    return absl::InvalidArgumentError(
        absl::StrCat("outcome: ", request.outcome(), " is not a ContactOutcome"));
  }
  domain::LogContactCommand command;
  command.task_id = request.task_id();
  command.outcome = request.outcome();
  command.notes = request.notes();
  command.follow_up_date = request.follow_up_date();
  command.close_task = request.close_task();
  absl::StatusOr<std::optional<absl::Time>> contacted_at =
      OptionalTimestamp("contacted_at", request.has_contacted_at(), request.contacted_at());
  if (!contacted_at.ok()) return contacted_at.status();
  command.contacted_at = *contacted_at;
  command.expected_version = request.expected_version();
  command.meta.actor = std::move(actor);
  command.meta.request_id = request.request_id();
  command.channel = request.channel();
  command.direction = request.direction();
  absl::Status shape = domain::ValidateShape(command);
  if (!shape.ok()) return shape;
  return command;
}

absl::StatusOr<domain::AssignTaskCommand> ToCommand(const v1::AssignTaskRequest& request,
                                                    std::string actor) {
  domain::AssignTaskCommand command;
  command.task_id = request.task_id();
  command.assignee = request.assignee();
  command.expected_version = request.expected_version();
  command.meta.actor = std::move(actor);
  command.meta.request_id = request.request_id();
  absl::Status shape = domain::ValidateShape(command);
  if (!shape.ok()) return shape;
  return command;
}

absl::StatusOr<domain::ClaimTaskCommand> ToCommand(const v1::ClaimTaskRequest& request,
                                                   std::string actor) {
  domain::ClaimTaskCommand command;
  command.task_id = request.task_id();
  command.expected_version = request.expected_version();
  command.meta.actor = std::move(actor);
  command.meta.request_id = request.request_id();
  absl::Status shape = domain::ValidateShape(command);
  if (!shape.ok()) return shape;
  return command;
}

absl::StatusOr<domain::CancelTaskCommand> ToCommand(const v1::CancelTaskRequest& request,
                                                    std::string actor) {
  domain::CancelTaskCommand command;
  command.task_id = request.task_id();
  command.reason = request.reason();
  command.notes = request.notes();
  command.expected_version = request.expected_version();
  command.meta.actor = std::move(actor);
  command.meta.request_id = request.request_id();
  absl::Status shape = domain::ValidateShape(command);
  if (!shape.ok()) return shape;
  return command;
}

absl::StatusOr<domain::ResolveTasksCommand> ToCommand(const v1::ResolveTasksRequest& request,
                                                      std::string actor) {
  domain::ResolveTasksCommand command;
  command.practice_id = request.practice_id();
  command.patient_id = request.patient_id();
  for (int category : request.categories()) {
    command.categories.push_back(static_cast<v1::TaskCategory>(category));
  }
  command.reason = request.reason();
  command.source_ref = request.source_ref();
  absl::StatusOr<std::optional<absl::Time>> occurred_at =
      OptionalTimestamp("occurred_at", request.has_occurred_at(), request.occurred_at());
  if (!occurred_at.ok()) return occurred_at.status();
  command.occurred_at = *occurred_at;
  command.meta.actor = std::move(actor);
  command.meta.request_id = request.request_id();
  absl::Status shape = domain::ValidateShape(command);
  if (!shape.ok()) return shape;
  return command;
}

absl::StatusOr<domain::SetContactPreferenceCommand> ToCommand(
    const v1::SetContactPreferenceRequest& request, std::string actor) {
  domain::SetContactPreferenceCommand command;
  command.practice_id = request.practice_id();
  command.patient_id = request.patient_id();
  command.do_not_contact = request.do_not_contact();
  command.until_date = request.until_date();
  command.reason = request.reason();
  command.meta.actor = std::move(actor);
  command.meta.request_id = request.request_id();
  absl::Status shape = domain::ValidateShape(command);
  if (!shape.ok()) return shape;
  return command;
}

absl::StatusOr<domain::ErasePatientCommand> ToCommand(const v1::ErasePatientRequest& request,
                                                      std::string actor) {
  domain::ErasePatientCommand command;
  command.practice_id = request.practice_id();
  command.patient_id = request.patient_id();
  command.reason = request.reason();
  command.meta.actor = std::move(actor);
  command.meta.request_id = request.request_id();
  absl::Status shape = domain::ValidateShape(command);
  if (!shape.ok()) return shape;
  return command;
}

absl::StatusOr<store::ListQuery> ToListQuery(const v1::ListTasksRequest& request) {
  store::ListQuery query;
  for (int raw : request.statuses()) {
    if (!v1::TaskStatus_IsValid(raw) || raw == v1::TASK_STATUS_UNSPECIFIED) {
      const std::string shown = raw == v1::TASK_STATUS_UNSPECIFIED
                                    ? std::string("TASK_STATUS_UNSPECIFIED")
                                    : absl::StrCat(raw);
      return absl::InvalidArgumentError(absl::StrCat(
          "statuses: ", shown, " is not a status (want OPEN, IN_PROGRESS or CLOSED)"));
    }
    query.statuses.push_back(static_cast<v1::TaskStatus>(raw));
  }
  if (!v1::TaskKind_IsValid(request.kind())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kind: ", request.kind(), " is not a TaskKind (want MANUAL, AUTOMATIC or unset)"));
  }
  query.kind = request.kind();
  if (absl::Status s = domain::ValidateOptionalId("patient_id", request.patient_id()); !s.ok()) {
    return s;
  }
  query.patient_id = request.patient_id();
  if (absl::Status s = domain::ValidateOptionalId("assignee", request.assignee()); !s.ok()) {
    return s;
  }
  query.assignee = request.assignee();
  if (absl::Status s = ListPracticeAndCategories(request, query); !s.ok()) return s;
  if (!request.follow_up_on_or_before().empty()) {
    absl::StatusOr<absl::CivilDay> day =
        domain::ParseDate("follow_up_on_or_before", request.follow_up_on_or_before());
    if (!day.ok()) return day.status();
    query.follow_up_on_or_before = *day;
  }
  if (request.page_size() < 0 || request.page_size() > kMaxPageSize) {
    return absl::InvalidArgumentError(absl::StrCat("page_size: ", request.page_size(),
                                                   " is out of range (want 0..", kMaxPageSize,
                                                   "; 0 means ", kDefaultPageSize, ")"));
  }
  query.page_size = request.page_size() == 0 ? kDefaultPageSize : request.page_size();
  query.page_token = request.page_token();
  return query;
}

std::string Fingerprint(absl::string_view method, absl::string_view actor,
                        const v1::CreateTaskRequest& request, absl::string_view on_behalf_of) {
  return FingerprintWithoutId(method, actor, request, on_behalf_of);
}

std::string Fingerprint(absl::string_view method, absl::string_view actor,
                        const v1::LogContactRequest& request, absl::string_view on_behalf_of) {
  return FingerprintWithoutId(method, actor, request, on_behalf_of);
}

std::string Fingerprint(absl::string_view method, absl::string_view actor,
                        const v1::AssignTaskRequest& request, absl::string_view on_behalf_of) {
  return FingerprintWithoutId(method, actor, request, on_behalf_of);
}

std::string Fingerprint(absl::string_view method, absl::string_view actor,
                        const v1::ClaimTaskRequest& request, absl::string_view on_behalf_of) {
  return FingerprintWithoutId(method, actor, request, on_behalf_of);
}

std::string Fingerprint(absl::string_view method, absl::string_view actor,
                        const v1::CancelTaskRequest& request, absl::string_view on_behalf_of) {
  return FingerprintWithoutId(method, actor, request, on_behalf_of);
}

std::string Fingerprint(absl::string_view method, absl::string_view actor,
                        const v1::ResolveTasksRequest& request, absl::string_view on_behalf_of) {
  return FingerprintWithoutId(method, actor, request, on_behalf_of);
}

std::string Fingerprint(absl::string_view method, absl::string_view actor,
                        const v1::ErasePatientRequest& request, absl::string_view on_behalf_of) {
  return FingerprintWithoutId(method, actor, request, on_behalf_of);
}

std::string Fingerprint(absl::string_view method, absl::string_view actor,
                        const v1::SetContactPreferenceRequest& request,
                        absl::string_view on_behalf_of) {
  return FingerprintWithoutId(method, actor, request, on_behalf_of);
}

v1::AccessRecord ToWireAccessRecord(store::StoredAccessRecord stored) {
  storage::v1::AccessRecord& r = stored.record;
  const bool cut = store::CapAccessRecord(&r);
  v1::AccessRecord out;
  out.set_sequence(r.sequence());
  *out.mutable_time() = r.time();
  out.set_principal(std::move(*r.mutable_principal()));
  out.set_on_behalf_of(std::move(*r.mutable_on_behalf_of()));
  out.set_rpc(std::move(*r.mutable_rpc()));
  *out.mutable_task_ids() = std::move(*r.mutable_task_ids());
  out.set_filter(std::move(*r.mutable_filter()));
  out.set_count(r.count());
  out.set_peer(std::move(*r.mutable_peer()));
  out.set_hash(std::string(store::AsBytes(stored.hash)));
  out.set_truncated(cut || r.truncated());
  return out;
}

}  // namespace outreach::server
