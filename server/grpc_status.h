// The one place where absl::Status becomes grpc::Status. The canonical codes are the same set in
// both libraries, so the mapping is one to one; the message is kept as is. Thread-safe.
#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>
#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace outreach::server {

grpc::StatusCode ToGrpcCode(absl::StatusCode code);
grpc::Status ToGrpcStatus(const absl::Status& status);

// Finishes a unary callback call at once with `status` (a refusal before any work).
grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context,
                                    const absl::Status& status);

}  // namespace outreach::server
