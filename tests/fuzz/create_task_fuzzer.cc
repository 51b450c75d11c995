// CreateTask: request bytes -> the server's conversion -> ValidateShape -> Decide against every
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
  v1::CreateTaskRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  absl::StatusOr<std::string> actor = server::ResolveActor(std::nullopt);
  if (!actor.ok()) fuzz::Fail("ResolveActor without x-actor must be anonymous");
  const std::string fingerprint = server::Fingerprint("CreateTask", *actor, request);
  v1::CreateTaskRequest retried = request;
  retried.set_request_id(request.request_id() + "-other");
  if (fingerprint.size() != 32 ||
      server::Fingerprint("CreateTask", *actor, retried) != fingerprint) {
    fuzz::Fail("CreateTask: the fingerprint is not 32 bytes independent of the request_id");
  }
  absl::StatusOr<domain::CreateTaskCommand> command = server::ToCommand(request, *actor);
  if (!command.ok()) {
    fuzz::CheckCode("ToCommand(CreateTaskRequest)", command.status(),
                    {absl::StatusCode::kInvalidArgument});
    return 0;
  }
  if (!request.task_id().empty() && command->task_id != request.task_id()) {
    fuzz::Fail("ToCommand changed the client's task_id");
  }
  // ToCommand promises a command that has passed ValidateShape.
  if (absl::Status s = domain::ValidateShape(*command); !s.ok()) {
    fuzz::Fail("ToCommand returned a command ValidateShape rejects: " + s.ToString());
  }
  fuzz::CheckDecide(*command);
  return 0;
}
