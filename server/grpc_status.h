// The one place where absl::Status becomes grpc::Status. The canonical codes are the same set in
// both libraries, so the mapping is one to one. The message is kept, except that an absolute file
// path in it (a RocksDB error from a read: ".../db/000004.log") becomes "<server path>": clients
// get the cause in words, the server's log the path. Payloads are never sent. Thread-safe.
#pragma once

#include <grpcpp/server_context.h>
#include <grpcpp/support/server_callback.h>
#include <grpcpp/support/status.h>

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace outreach::server {

grpc::StatusCode ToGrpcCode(absl::StatusCode code);
// The code's canonical name ("INVALID_ARGUMENT"), as the request log and the metrics' labels
// show it; "UNKNOWN" for a number outside the canonical set.
std::string CodeName(grpc::StatusCode code);
grpc::Status ToGrpcStatus(const absl::Status& status);
// `message` with each absolute path (a '/' that starts a word, up to a space, quote, bracket,
// ':', ',' or ';') replaced by "<server path>".
std::string WithoutServerPaths(absl::string_view message);

// Finishes a unary callback call at once with `status` (a refusal before any work).
grpc::ServerUnaryReactor* FinishNow(grpc::CallbackServerContext* context,
                                    const absl::Status& status);

}  // namespace outreach::server
