// ReadEvents: request bytes -> the task id check EventLogService::ReadEvents makes -> the event
// keys the read starts from, and the records the read would stream for every fixed state's
// events under that id (tests/fuzz/fuzz_support.h).
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>

#include "domain/validation.h"
#include "outreach/v1/event_log.pb.h"
#include "store/event_codec.h"
#include "store/keys.h"
#include "tests/fuzz/fuzz_support.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  outreach::fuzz::QuietProtobufLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace outreach;
  v1::ReadEventsRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  if (absl::Status s = domain::ValidateOptionalId("task_id", request.task_id()); !s.ok()) {
    fuzz::CheckCode("ReadEvents task_id", s, {absl::StatusCode::kInvalidArgument});
    return 0;
  }
  // The scan starts at EventKey(from_position): it parses back, and key order is number order.
  const uint64_t from = request.from_position();
  uint64_t parsed = 0;
  if (!store::keys::ParseEventKey(store::keys::EventKey(from), &parsed) || parsed != from) {
    fuzz::Fail("EventKey(" + std::to_string(from) + ") does not parse back");
  }
  if (from < std::numeric_limits<uint64_t>::max() &&
      !(store::keys::EventKey(from) < store::keys::EventKey(from + 1))) {
    fuzz::Fail("EventKey order differs from position order at " + std::to_string(from));
  }
  if (request.task_id().empty()) return 0;
  for (const fuzz::FixedState& state : fuzz::FixedStates(request.task_id())) {
    store::Hash hash = store::ZeroHash();
    for (const storage::v1::StoredEvent& event : state.events) {
      const store::Hash prev_hash = hash;
      const std::string value = store::EncodeEvent(event, prev_hash, &hash);
      absl::StatusOr<store::DecodedEvent> decoded = store::DecodeEvent(event.position(), value);
      if (!decoded.ok()) fuzz::Fail("a stored event does not decode: " + decoded.status().ToString());
      const v1::EventRecord record = store::ToEventRecord(*decoded);
      if (record.task_id() != request.task_id() || record.position() != event.position() ||
          record.version() != event.version() || record.prev_hash() != store::AsBytes(prev_hash) ||
          record.hash() != store::AsBytes(hash) ||
          record.schema_version() != store::kEventSchemaVersion) {
        fuzz::Fail("the streamed record differs from the stored event:\n" + record.DebugString());
      }
    }
  }
  return 0;
}
