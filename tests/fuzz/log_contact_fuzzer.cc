// LogContact: request bytes -> the server's conversion -> ValidateShape -> Decide against every
// fixed state -> Apply (tests/fuzz/fuzz_support.h).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "domain/task_rules.h"
#include "outreach/v1/task_service.pb.h"
#include "server/convert.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  outreach::fuzz::QuietProtobufLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace outreach;
  v1::LogContactRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  // The caller's identity rides in metadata; a fixed valid one lets the request's own fields
  // decide.
  absl::StatusOr<std::string> actor = server::ResolveActor("coordinator-1");
  if (!actor.ok()) fuzz::Fail("ResolveActor rejected a valid actor");
  const std::string fingerprint = server::Fingerprint("LogContact", *actor, request);
  v1::LogContactRequest retried = request;
  retried.set_request_id(request.request_id() + "-other");
  if (fingerprint.size() != 32 ||
      server::Fingerprint("LogContact", *actor, retried) != fingerprint) {
    fuzz::Fail("LogContact: the fingerprint is not 32 bytes independent of the request_id");
  }
  absl::StatusOr<domain::LogContactCommand> command = server::ToCommand(request, *actor);
  if (!command.ok()) {
    fuzz::CheckCode("ToCommand(LogContactRequest)", command.status(),
                    {absl::StatusCode::kInvalidArgument});
    return 0;
  }
  if (absl::Status s = domain::ValidateShape(*command); !s.ok()) {
    fuzz::Fail("ToCommand returned a command ValidateShape rejects: " + s.ToString());
  }
  fuzz::CheckDecide(*command);
  return 0;
}
