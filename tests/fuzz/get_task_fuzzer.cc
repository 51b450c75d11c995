// GetTask: request bytes -> the task id check TaskService::GetTask makes -> the rows the store
// reads the task from and indexes it under, for every fixed state under that id
// (tests/fuzz/fuzz_support.h).
#include <cstddef>
#include <cstdint>
#include <string>

#include "domain/validation.h"
#include "outreach/v1/task_service.pb.h"
#include "store/keys.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  outreach::fuzz::QuietProtobufLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace outreach;
  v1::GetTaskRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  if (absl::Status s = domain::ValidateId("task_id", request.task_id()); !s.ok()) {
    fuzz::CheckCode("GetTask task_id", s, {absl::StatusCode::kInvalidArgument});
    return 0;
  }
  const std::string& id = request.task_id();
  if (id.find('\0') != std::string::npos) fuzz::Fail("a valid id contains '\\0'");
  // A task's stream keys sit under its prefix, and no other valid id's prefix overlaps it.
  const std::string prefix = store::keys::StreamPrefix(id);
  if (store::keys::StreamKey(id, 1).rfind(prefix, 0) != 0 ||
      store::keys::StreamKey(id + "x", 1).rfind(prefix, 0) == 0) {
    fuzz::Fail("stream keys of \"" + id + "\" leave its prefix or share it with another task");
  }
  for (const fuzz::FixedState& state : fuzz::FixedStates(id)) {
    if (state.task.has_value()) fuzz::CheckProjectionRows(*state.task);
  }
  return 0;
}
