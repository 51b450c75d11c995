#include "server/grpc_status.h"

#include <optional>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"
#include "domain/task_rules.h"
#include "google/protobuf/any.pb.h"
#include "outreach/v1/error_details.pb.h"

namespace outreach::server {

grpc::StatusCode ToGrpcCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return grpc::StatusCode::OK;
    case absl::StatusCode::kCancelled:
      return grpc::StatusCode::CANCELLED;
    case absl::StatusCode::kUnknown:
      return grpc::StatusCode::UNKNOWN;
    case absl::StatusCode::kInvalidArgument:
      return grpc::StatusCode::INVALID_ARGUMENT;
    case absl::StatusCode::kDeadlineExceeded:
      return grpc::StatusCode::DEADLINE_EXCEEDED;
    case absl::StatusCode::kNotFound:
      return grpc::StatusCode::NOT_FOUND;
    case absl::StatusCode::kAlreadyExists:
      return grpc::StatusCode::ALREADY_EXISTS;
    case absl::StatusCode::kPermissionDenied:
      return grpc::StatusCode::PERMISSION_DENIED;
    case absl::StatusCode::kResourceExhausted:
      return grpc::StatusCode::RESOURCE_EXHAUSTED;
    case absl::StatusCode::kFailedPrecondition:
      return grpc::StatusCode::FAILED_PRECONDITION;
    case absl::StatusCode::kAborted:
      return grpc::StatusCode::ABORTED;
    case absl::StatusCode::kOutOfRange:
      return grpc::StatusCode::OUT_OF_RANGE;
    case absl::StatusCode::kUnimplemented:
      return grpc::StatusCode::UNIMPLEMENTED;
    case absl::StatusCode::kInternal:
      return grpc::StatusCode::INTERNAL;
    case absl::StatusCode::kUnavailable:
      return grpc::StatusCode::UNAVAILABLE;
    case absl::StatusCode::kDataLoss:
      return grpc::StatusCode::DATA_LOSS;
    case absl::StatusCode::kUnauthenticated:
      return grpc::StatusCode::UNAUTHENTICATED;
    default:
      return grpc::StatusCode::UNKNOWN;
  }
}

std::string WithoutServerPaths(absl::string_view message) {
  std::string out;
  out.reserve(message.size());
  std::size_t i = 0;
  while (i < message.size()) {
    const bool word_start =
        i == 0 || absl::string_view(" \"'(=[").find(message[i - 1]) != absl::string_view::npos;
    if (message[i] == '/' && word_start) {
      while (i < message.size() &&
             absl::string_view(" \"'),:;]").find(message[i]) == absl::string_view::npos) {
        ++i;
      }
      out += "<server path>";
      continue;
    }
    out.push_back(message[i++]);
  }
  return out;
}

namespace {

// grpc-status-details-bin for a status that names an existing task (domain::
// kExistingTaskIdPayload): google.rpc.Status with one google.rpc.ErrorInfo, reason
// TASK_ALREADY_OPEN, metadata existing_task_id. Empty when there is nothing to add.
std::string DetailsOf(const absl::Status& status, grpc::StatusCode code,
                      const std::string& message) {
  const auto existing = status.GetPayload(domain::kExistingTaskIdPayload);
  if (!existing.has_value()) return "";
  v1::ErrorInfo info;
  info.set_reason("TASK_ALREADY_OPEN");
  info.set_domain("outreach.v1");
  (*info.mutable_metadata())["existing_task_id"] = std::string(*existing);
  v1::RpcStatus details;
  details.set_code(static_cast<int32_t>(code));
  details.set_message(message);
  google::protobuf::Any* any = details.add_details();
  any->set_type_url("type.googleapis.com/google.rpc.ErrorInfo");
  any->set_value(info.SerializeAsString());
  return details.SerializeAsString();
}

}  // namespace

std::string CodeName(grpc::StatusCode code) {
  // The canonical codes are the same numbers in both libraries (see ToGrpcCode).
  const std::string name = absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
  return name.empty() ? "UNKNOWN" : name;
}

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  // Payloads (store::ServerDetail) stay on the server, but for the error details a client
  // acts on (DetailsOf); a path that reached a message does too.
  const grpc::StatusCode code = ToGrpcCode(status.code());
  std::string message = WithoutServerPaths(status.message());
  std::string details = DetailsOf(status, code, message);
  if (details.empty()) return grpc::Status(code, std::move(message));
  return grpc::Status(code, std::move(message), std::move(details));
}

grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context,
                                    const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace outreach::server
