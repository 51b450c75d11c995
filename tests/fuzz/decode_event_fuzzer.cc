// The stored event decoder (store/event_codec.h) on arbitrary bytes. Input: the position the row's
// key would carry (fixed64, big-endian) followed by the row's value.
//   - DecodeEvent returns DATA_LOSS naming the position, or an event;
//   - a decoded event matches the envelope it came from, and re-encoding it reaches a fixed point:
//     Encode(Decode(Encode(event))) == Encode(event), with a hash that verifies;
//   - Apply, the first thing a rebuild does with a decoded event, returns a status on it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "domain/task_rules.h"
#include "store/event_codec.h"
#include "store/keys.h"
#include "tests/fuzz/fuzz_support.h"

namespace {

constexpr std::size_t kPositionSize = 8;
constexpr std::size_t kHeaderSize = 1 + 2 * outreach::store::kHashSize;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  outreach::fuzz::QuietProtobufLogs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace outreach;
  if (size < kPositionSize) return 0;
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  uint64_t position = 0;
  store::keys::DecodeFixed64BE(input.substr(0, kPositionSize), &position);
  const absl::string_view value = input.substr(kPositionSize);

  absl::StatusOr<store::DecodedEvent> decoded = store::DecodeEvent(position, value);
  if (!decoded.ok()) {
    fuzz::CheckCode("DecodeEvent", decoded.status(), {absl::StatusCode::kDataLoss});
    if (decoded.status().message().find(absl::StrCat("position ", position)) ==
        absl::string_view::npos) {
      fuzz::Fail("DecodeEvent's error does not name the position: " + decoded.status().ToString());
    }
    return 0;
  }
  if (value.size() < kHeaderSize || decoded->position != position ||
      decoded->event.position() != position ||
      store::AsBytes(decoded->prev_hash) != value.substr(1, store::kHashSize) ||
      store::AsBytes(decoded->hash) != value.substr(1 + store::kHashSize, store::kHashSize) ||
      decoded->body != value.substr(kHeaderSize) ||
      decoded->stored_schema_version < 1 ||
      decoded->stored_schema_version > store::kEventSchemaVersion ||
      decoded->event.schema_version() != store::kEventSchemaVersion) {
    fuzz::Fail("the decoded event does not match its envelope");
  }
  const bool verified = store::VerifyEventHash(*decoded);
  if (verified != (store::ChainHash(decoded->prev_hash, position, decoded->body) == decoded->hash)) {
    fuzz::Fail("VerifyEventHash disagrees with ChainHash");
  }
  const v1::EventRecord record = store::ToEventRecord(*decoded);
  if (record.position() != position || record.task_id() != decoded->event.task_id() ||
      record.schema_version() != decoded->stored_schema_version ||
      record.has_task_created() != decoded->event.has_task_created() ||
      record.has_contact_logged() != decoded->event.has_contact_logged() ||
      record.has_task_closed() != decoded->event.has_task_closed() ||
      record.has_task_assigned() != decoded->event.has_task_assigned()) {
    fuzz::Fail("ToEventRecord lost a field:\n" + record.DebugString());
  }

  // Re-encoding: the body may have been written in any field order (or with unknown fields);
  // one round through the encoder makes it canonical, and a second changes nothing.
  store::Hash hash{};
  const std::string canonical = store::EncodeEvent(decoded->event, decoded->prev_hash, &hash);
  absl::StatusOr<store::DecodedEvent> again = store::DecodeEvent(position, canonical);
  if (!again.ok()) fuzz::Fail("a re-encoded event does not decode: " + again.status().ToString());
  if (!store::VerifyEventHash(*again) || again->hash != hash ||
      fuzz::Bytes(again->event) != fuzz::Bytes(decoded->event)) {
    fuzz::Fail("re-encoding changed the event or broke its hash");
  }
  store::Hash hash_again{};
  if (store::EncodeEvent(again->event, again->prev_hash, &hash_again) != canonical ||
      hash_again != hash) {
    fuzz::Fail("encoding is not a fixed point");
  }

  v1::Task task;
  if (absl::Status s = domain::Apply(task, decoded->event); !s.ok()) {
    fuzz::CheckCode("Apply of a decoded event", s,
                    {absl::StatusCode::kDataLoss, absl::StatusCode::kFailedPrecondition});
  }
  return 0;
}
