#include "server/call_security.h"

#include <memory>
#include <iterator>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "domain/validation.h"
#include "logging/log.h"
#include "server/convert.h"

namespace outreach::server {
namespace {

// The one value of metadata `key`: nullopt when absent; `repeated` set when sent more than once.
std::optional<std::string> OneValue(const grpc::CallbackServerContext& context,
                                    absl::string_view key, bool* repeated) {
  const auto& metadata = context.client_metadata();
  auto [begin, end] = metadata.equal_range(grpc::string_ref(key.data(), key.size()));
  *repeated = false;
  if (begin == end) return std::nullopt;
  if (std::next(begin) != end) *repeated = true;
  return std::string(begin->second.data(), begin->second.size());
}

}  // namespace

absl::StatusOr<Caller> CallSecurity::Authorize(const grpc::CallbackServerContext& context,
                                               absl::string_view method) const {
  std::string principal;
  absl::StatusOr<Caller> caller = Identify(context, method, &principal);
  if (!caller.ok() && refusals_ != nullptr) {
    refusals_->Refused(caller.status(), principal, method, context.peer());
  }
  if (observer_ != nullptr) {
    observer_->NoteCaller(&context, caller.ok() ? caller->principal : principal,
                          caller.ok() ? caller->on_behalf_of : "");
  }
  return caller;
}

absl::StatusOr<Caller> CallSecurity::Identify(const grpc::CallbackServerContext& context,
                                              absl::string_view method,
                                              std::string* principal) const {
  CallCredentials credentials;
  // Malformed metadata other than the credentials is reported only once the caller is known:
  // an unauthenticated call learns nothing but UNAUTHENTICATED.
  absl::Status metadata_error;
  bool repeated = false;
  if (std::optional<std::string> value = OneValue(context, kAuthorizationMetadataKey, &repeated)) {
    if (repeated) {
      return absl::UnauthenticatedError("authorization: sent more than once; send one token");
    }
    credentials.authorization = *std::move(value);
  }
  if (std::optional<std::string> value = OneValue(context, kOnBehalfOfMetadataKey, &repeated)) {
    if (repeated || value->empty()) {
      metadata_error = absl::InvalidArgumentError(absl::StrCat(
          kOnBehalfOfMetadataKey, ": send one id (1-64 characters of [A-Za-z0-9._:-])"));
    }
    credentials.on_behalf_of = *std::move(value);
  }
  std::optional<std::string> x_actor = OneValue(context, kActorMetadataKey, &repeated);
  if (x_actor.has_value() && repeated && metadata_error.ok()) {
    metadata_error = absl::InvalidArgumentError(
        absl::StrCat(kActorMetadataKey, ": sent more than once; send one actor"));
  }
  if (development()) {
    if (!metadata_error.ok()) return metadata_error;
    // The claimed actor, checked as before authentication existed (no "system:" actors).
    absl::StatusOr<std::string> actor =
        ResolveActor(x_actor.has_value() ? std::optional<absl::string_view>(*x_actor)
                                         : std::nullopt);
    if (!actor.ok()) return actor.status();
    credentials.x_actor = *std::move(actor);
  } else if (std::shared_ptr<const grpc::AuthContext> auth = context.auth_context()) {
    credentials.cert_subjects = CertSubjects(*auth);
  }
  if (!metadata_error.ok()) credentials.on_behalf_of.clear();
  absl::StatusOr<Caller> caller = authenticator_->Check(method, credentials, principal);
  if (!caller.ok()) return caller.status();
  if (caller->principal.empty()) return caller;  // an open method: nothing else matters
  if (!metadata_error.ok()) return metadata_error;
  if (!development() && x_actor.has_value()) {
    return absl::InvalidArgumentError(absl::StrCat(
        kActorMetadataKey, ": not accepted when callers are authenticated; the actor is the "
        "authenticated principal (", caller->principal, ")"));
  }
  if (std::optional<std::string> route = OneValue(context, kPracticeIdMetadataKey, &repeated)) {
    if (repeated || !domain::IsValidId(*route)) {
      return absl::InvalidArgumentError(absl::StrCat(
          kPracticeIdMetadataKey, ": send one practice id (1-64 characters of [A-Za-z0-9._:-])"));
    }
    caller->routed_practice = *std::move(route);
  }
  return caller;
}

void CallSecurity::RecordAccess(const Caller& caller, const grpc::CallbackServerContext& context,
                                absl::string_view method, Access access, Then then) const {
  if (access_log_ == nullptr) {
    // Read-only investigation: the database takes no record, so the read goes to the server's
    // log instead; the audit trail of that session is its log.
    // (The filter is the request as text: this is the session's audit trail.)
    logging::Info("access (read-only investigation, not in the access log):",
                  {{"principal", caller.principal},
                   {"on_behalf_of", caller.on_behalf_of},
                   {"rpc", method},
                   {"tasks", absl::StrJoin(access.task_ids, ",")},
                   {"filter", access.filter},
                   {"count", access.count},
                   {"peer", context.peer()}});
    std::move(then)(absl::OkStatus());
    return;
  }
  store::AccessEntry entry;
  entry.principal = caller.principal;
  entry.on_behalf_of = caller.on_behalf_of;
  entry.rpc = std::string(method);
  entry.task_ids = std::move(access.task_ids);
  entry.filter = std::move(access.filter);
  entry.count = access.count;
  entry.peer = context.peer();
  access_log_->Append(std::move(entry),
                      [then = std::move(then)](absl::StatusOr<uint64_t> sequence) mutable {
                        if (sequence.ok()) {
                          std::move(then)(absl::OkStatus());
                          return;
                        }
                        std::move(then)(absl::UnavailableError(absl::StrCat(
                            "cannot record this read in the access log, so it is not served: ",
                            sequence.status().message())));
                      });
}

store::WriteAccess CallSecurity::WriteAccessOf(const Caller& caller,
                                               const grpc::CallbackServerContext& context,
                                               absl::string_view method) const {
  store::WriteAccess access;
  access.entry.principal = caller.principal;
  access.entry.on_behalf_of = caller.on_behalf_of;
  access.entry.rpc = std::string(method);
  access.entry.peer = context.peer();
  // A replayed result is not decided again: the caller's practices may have narrowed since.
  access.admit = [caller](const v1::Task& task) {
    return CheckPracticeAccess(caller, task.practice_id());
  };
  return access;
}

std::string FilterText(const google::protobuf::Message& request) {
  std::unique_ptr<google::protobuf::Message> known(request.New());
  known->CopyFrom(request);
  known->DiscardUnknownFields();
  std::string text = known->ShortDebugString();
  // The store caps the filter too; cutting here keeps the page positions AccessOfEvents appends.
  constexpr std::size_t kRoomForPositions = 64;
  const std::size_t limit = store::kMaxAccessFilterBytes - kRoomForPositions;
  if (store::TruncateUtf8(&text, limit)) text.append("...");
  return text;
}

std::string FilterText(const google::protobuf::Message& request, const store::EventStore& store) {
  const google::protobuf::FieldDescriptor* field =
      request.GetDescriptor()->FindFieldByName("patient_id");
  if (!store.encrypted() || field == nullptr ||
      field->type() != google::protobuf::FieldDescriptor::TYPE_STRING || field->is_repeated()) {
    return FilterText(request);
  }
  const google::protobuf::Reflection* reflection = request.GetReflection();
  const std::string patient_id = reflection->GetString(request, field);
  if (patient_id.empty()) return FilterText(request);
  absl::StatusOr<std::string> pseudonym = store.Pseudonym(patient_id);
  std::unique_ptr<google::protobuf::Message> shown(request.New());
  shown->CopyFrom(request);
  shown->GetReflection()->SetString(shown.get(), field,
                                    pseudonym.ok() ? *pseudonym : std::string("[pseudonym]"));
  return FilterText(*shown);
}

CallSecurity::Access AccessOfEvents(const std::vector<v1::EventRecord>& events,
                                    absl::string_view request) {
  CallSecurity::Access access;
  absl::flat_hash_set<absl::string_view> seen;
  for (const v1::EventRecord& event : events) {
    if (seen.insert(event.task_id()).second) access.task_ids.push_back(event.task_id());
  }
  access.filter = absl::StrCat(request, request.empty() ? "" : " ", "positions ",
                               events.front().position(), "..", events.back().position());
  access.count = events.size();
  return access;
}

}  // namespace outreach::server
