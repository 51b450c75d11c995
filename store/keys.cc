#include "store/keys.h"

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "domain/validation.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/wire_format_lite.h"
#include "store/event_codec.h"

namespace outreach::store::keys {
namespace {

constexpr uint64_t kSignBit = uint64_t{1} << 63;

void AppendFixed64BE(std::string* out, uint64_t value) {
  for (int shift = 56; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((value >> shift) & 0xFF));
  }
}

void AppendFixed32BE(std::string* out, uint32_t value) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out->push_back(static_cast<char>((value >> shift) & 0xFF));
  }
}

template <typename Message>
std::string SerializeDeterministic(const Message& message) {
  std::string out;
  {
    google::protobuf::io::StringOutputStream stream(&out);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  return out;
}

}  // namespace

const std::vector<std::string>& ColumnFamilyNames() {
  static const std::vector<std::string>* const kNames = new std::vector<std::string>{
      "default",  "events",   "streams",  "tasks",     "worklist",
      "expiry",   "requests", "patients", "access_log", "consumers", "stats",
      "keys"};
  return *kNames;
}

std::string EncodeFixed64BE(uint64_t value) {
  std::string out;
  AppendFixed64BE(&out, value);
  return out;
}

std::string EncodeFixed32BE(uint32_t value) {
  std::string out;
  AppendFixed32BE(&out, value);
  return out;
}

bool DecodeFixed64BE(absl::string_view bytes, uint64_t* value) {
  if (bytes.size() != 8) return false;
  uint64_t v = 0;
  for (char c : bytes) v = (v << 8) | static_cast<uint8_t>(c);
  *value = v;
  return true;
}

bool DecodeFixed32BE(absl::string_view bytes, uint32_t* value) {
  if (bytes.size() != 4) return false;
  uint32_t v = 0;
  for (char c : bytes) v = (v << 8) | static_cast<uint8_t>(c);
  *value = v;
  return true;
}

std::string EventKey(uint64_t position) { return EncodeFixed64BE(position); }

bool ParseEventKey(absl::string_view key, uint64_t* position) {
  return DecodeFixed64BE(key, position);
}

std::string StreamPrefix(absl::string_view task_id) {
  std::string out(task_id);
  out.push_back('\0');
  return out;
}

std::string StreamKey(absl::string_view task_id, int64_t version) {
  std::string out = StreamPrefix(task_id);
  AppendFixed64BE(&out, static_cast<uint64_t>(version));
  return out;
}

std::string ExpiryTimeKey(int64_t unix_micros) {
  return EncodeFixed64BE(static_cast<uint64_t>(unix_micros) ^ kSignBit);
}

std::string ExpiryKey(absl::Time expires_at, absl::string_view task_id) {
  std::string out = ExpiryTimeKey(absl::ToUnixMicros(expires_at));
  absl::StrAppend(&out, task_id);
  return out;
}

bool ParseExpiryKey(absl::string_view key, absl::Time* expires_at, std::string* task_id) {
  uint64_t raw = 0;
  if (key.size() <= 8 || !DecodeFixed64BE(key.substr(0, 8), &raw)) return false;
  *expires_at = absl::FromUnixMicros(static_cast<int64_t>(raw ^ kSignBit));
  *task_id = std::string(key.substr(8));
  return true;
}

uint32_t DayKey(absl::CivilDay day) {
  const int64_t days = day - absl::CivilDay(1970, 1, 1);
  return static_cast<uint32_t>(days + kDayOffset);
}

uint32_t DayKeyOfDate(absl::string_view follow_up_date) {
  if (follow_up_date.empty()) return kNoFollowUpDay;
  absl::StatusOr<absl::CivilDay> day = domain::ParseDate("follow_up_date", follow_up_date);
  if (!day.ok()) return kNoFollowUpDay;
  return DayKey(*day);
}

std::string WorklistPrefix(Scope scope, absl::string_view scope_value, v1::TaskStatus status) {
  std::string out;
  out.push_back(static_cast<char>(scope));
  absl::StrAppend(&out, scope_value);
  out.push_back('\0');
  out.push_back(static_cast<char>(status));
  return out;
}

std::string KindScopeValue(v1::TaskKind kind) { return absl::StrCat(static_cast<int>(kind)); }

uint8_t UrgencyRank(v1::TaskPriority priority) { return priority == v1::URGENT ? 0 : 1; }

std::string WorklistKey(absl::string_view prefix, uint32_t day_key, uint8_t urgency,
                        absl::string_view task_id) {
  std::string out(prefix);
  AppendFixed32BE(&out, day_key);
  out.push_back(static_cast<char>(urgency));
  absl::StrAppend(&out, task_id);
  return out;
}

bool ParseWorklistSuffix(absl::string_view suffix, uint32_t* day_key, uint8_t* urgency,
                         std::string* task_id) {
  if (suffix.size() <= 5 || !DecodeFixed32BE(suffix.substr(0, 4), day_key)) return false;
  *urgency = static_cast<uint8_t>(suffix[4]);
  *task_id = std::string(suffix.substr(5));
  return true;
}

namespace {

// kind | category | patient_id '\0' assignee '\0' practice_id (the grammar in keys.h).
void AppendWorklistValue(std::string* out, v1::TaskKind kind, v1::TaskCategory category,
                         absl::string_view patient_id, absl::string_view assignee,
                         absl::string_view practice_id) {
  out->reserve(out->size() + 4 + patient_id.size() + assignee.size() + practice_id.size());
  out->push_back(static_cast<char>(kind));
  out->push_back(static_cast<char>(category));
  absl::StrAppend(out, patient_id);
  out->push_back('\0');
  absl::StrAppend(out, assignee);
  out->push_back('\0');
  absl::StrAppend(out, practice_id);
}

}  // namespace

std::string EncodeWorklistValue(const WorklistValue& value) {
  std::string out;
  AppendWorklistValue(&out, value.kind, value.category, value.patient_id, value.assignee,
                      value.practice_id);
  return out;
}

bool DecodeWorklistValue(absl::string_view bytes, WorklistValue* value) {
  if (bytes.size() < 2) return false;
  const std::size_t first = bytes.find('\0', 2);
  if (first == absl::string_view::npos) return false;
  const std::size_t second = bytes.find('\0', first + 1);
  if (second == absl::string_view::npos) return false;
  value->kind = static_cast<v1::TaskKind>(static_cast<uint8_t>(bytes[0]));
  value->category = static_cast<v1::TaskCategory>(static_cast<uint8_t>(bytes[1]));
  value->patient_id = std::string(bytes.substr(2, first - 2));
  value->assignee = std::string(bytes.substr(first + 1, second - first - 1));
  value->practice_id = std::string(bytes.substr(second + 1));
  return true;
}

void ForEachWorklistRow(const v1::Task& task,
                        absl::FunctionRef<void(absl::string_view, absl::string_view)> worklist) {
  const uint32_t day_key = DayKeyOfDate(task.follow_up_date());
  std::string value;
  AppendWorklistValue(&value, task.kind(), task.category(), task.patient_id(), task.assignee(),
                      task.practice_id());
  // One buffer for every key: WorklistKey(WorklistPrefix(scope, scope_value, status), ...).
  std::string key;
  key.reserve(64 + task.patient_id().size() + task.assignee().size());
  auto add = [&](Scope scope, absl::string_view scope_value) {
    key.clear();
    key.push_back(static_cast<char>(scope));
    absl::StrAppend(&key, scope_value);
    key.push_back('\0');
    key.push_back(static_cast<char>(task.status()));
    AppendFixed32BE(&key, day_key);
    key.push_back(static_cast<char>(UrgencyRank(task.priority())));
    absl::StrAppend(&key, task.task_id());
    worklist(key, value);
  };
  add(Scope::kKind, KindScopeValue(task.kind()));  // a few digits: no allocation
  add(Scope::kPatient, task.patient_id());
  if (!task.assignee().empty()) add(Scope::kAssignee, task.assignee());
  add(Scope::kPractice, task.practice_id());
}

std::optional<std::string> ExpiryRowFor(const v1::Task& task) {
  if (task.kind() == v1::AUTOMATIC && task.status() != v1::CLOSED && task.has_expires_at()) {
    return ExpiryKey(domain::FromProto(task.expires_at()), task.task_id());
  }
  return std::nullopt;
}

void ForEachIndexRow(const v1::Task& task,
                     absl::FunctionRef<void(absl::string_view, absl::string_view)> worklist,
                     absl::FunctionRef<void(absl::string_view)> expiry) {
  ForEachWorklistRow(task, worklist);
  if (std::optional<std::string> key = ExpiryRowFor(task)) expiry(*key);
}

IndexRows IndexRowsFor(const v1::Task& task) {
  IndexRows rows;
  rows.worklist.reserve(5);
  ForEachIndexRow(
      task,
      [&](absl::string_view key, absl::string_view value) {
        rows.worklist.emplace_back(std::string(key), std::string(value));
      },
      [&](absl::string_view key) { rows.expiry = std::string(key); });
  return rows;
}

std::string EncodeTask(const v1::Task& task) { return SerializeDeterministic(task); }

namespace {

using google::protobuf::internal::WireFormatLite;
constexpr uint32_t kContactTag = WireFormatLite::MakeTag(
    v1::Task::kContactsFieldNumber, WireFormatLite::WIRETYPE_LENGTH_DELIMITED);
static_assert(kContactTag < 0x80, "the tag is one byte");

}  // namespace

// (Contact has no map fields: its plain serialization is the deterministic one EncodeTask uses.)
std::size_t ContactBytesSize(const v1::Contact& contact) {
  const std::size_t size = contact.ByteSizeLong();
  return 1 + google::protobuf::io::CodedOutputStream::VarintSize32(static_cast<uint32_t>(size)) +
         size;
}

void WriteContactBytes(const v1::Contact& contact, char* out) {
  auto* bytes = reinterpret_cast<uint8_t*>(out);
  bytes[0] = static_cast<uint8_t>(kContactTag);
  const auto body = static_cast<uint32_t>(contact.GetCachedSize());
  uint8_t* at = google::protobuf::io::CodedOutputStream::WriteVarint32ToArray(body, bytes + 1);
  contact.SerializeWithCachedSizesToArray(at);
}

void AppendContactBytes(const v1::Contact& contact, std::string* contacts) {
  const std::size_t size = ContactBytesSize(contact);
  const std::size_t at = contacts->size();
  contacts->resize(at + size);
  WriteContactBytes(contact, contacts->data() + at);
}

// The task's serialization with the bytes spliced in where field order puts Task.contacts:
// before its first field numbered above them.
absl::Status EncodeTaskRow(const v1::Task& task, absl::string_view contacts, std::string* row) {
  *row = SerializeDeterministic(task);
  if (contacts.empty()) return absl::OkStatus();
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(row->data()),
                                            static_cast<int>(row->size()));
  std::size_t split = row->size();
  while (true) {
    const int at = in.CurrentPosition();
    const uint32_t tag = in.ReadTag();
    if (tag == 0) break;
    if (WireFormatLite::GetTagFieldNumber(tag) > v1::Task::kContactsFieldNumber) {
      split = static_cast<std::size_t>(at);
      break;
    }
    if (!WireFormatLite::SkipField(&in, tag)) {
      return absl::InternalError("a task's own serialization does not parse");
    }
  }
  row->insert(split, contacts.data(), contacts.size());
  return absl::OkStatus();
}

absl::Status DecodeTaskRow(absl::string_view row, v1::Task* task, std::string* contacts) {
  // The row's fields in order; its contacts are one run of them (the row is EncodeTask's).
  google::protobuf::io::CodedInputStream in(reinterpret_cast<const uint8_t*>(row.data()),
                                            static_cast<int>(row.size()));
  std::size_t first = row.size();
  std::size_t last = row.size();
  while (true) {
    const auto at = static_cast<std::size_t>(in.CurrentPosition());
    const uint32_t tag = in.ReadTag();
    if (tag == 0) break;
    if (!WireFormatLite::SkipField(&in, tag)) break;  // ParsePartial below says it is bad
    if (tag == kContactTag) {
      if (first == row.size()) first = at;
      last = static_cast<std::size_t>(in.CurrentPosition());
    } else if (first != row.size()) {
      break;  // past the contacts
    }
  }
  contacts->clear();
  bool parsed = false;
  if (first == row.size()) {
    parsed = task->ParseFromArray(row.data(), static_cast<int>(row.size()));
  } else {
    contacts->assign(row.data() + first, last - first);
    std::string rest;
    rest.reserve(row.size() - contacts->size());
    rest.append(row.data(), first);
    rest.append(row.data() + last, row.size() - last);
    parsed = task->ParseFromString(rest);
  }
  if (!parsed || task->contacts_size() != 0) {
    return absl::DataLossError("a \"tasks\" row is not a Task");
  }
  return absl::OkStatus();
}

std::string EncodePatientRow(const storage::v1::PatientRow& row) {
  return SerializeDeterministic(row);
}

std::string PatientKey(absl::string_view practice_id, absl::string_view patient_id) {
  return RequestKey(practice_id, patient_id);  // the same shape: id '\0' id
}

std::string RequestKey(absl::string_view actor, absl::string_view request_id) {
  std::string key;
  key.reserve(actor.size() + 1 + request_id.size());
  key.append(actor.data(), actor.size());
  key.push_back('\0');
  key.append(request_id.data(), request_id.size());
  return key;
}

std::string EncodeRequestRecord(const storage::v1::RequestRecord& record) {
  return SerializeDeterministic(record);
}

std::string EncodeHead(uint64_t position, absl::string_view hash) {
  std::string out = EncodeFixed64BE(position);
  absl::StrAppend(&out, hash);
  return out;
}

bool DecodeHead(absl::string_view bytes, uint64_t* position, std::string* hash) {
  if (bytes.size() != 8 + kHashSize) return false;
  DecodeFixed64BE(bytes.substr(0, 8), position);
  *hash = std::string(bytes.substr(8));
  return true;
}

std::string EncodeCheckpoint(const storage::v1::VerifiedCheckpoint& checkpoint) {
  std::string out = SerializeDeterministic(checkpoint);
  const Hash checksum = Sha256(out);
  absl::StrAppend(&out, AsBytes(checksum));
  return out;
}

absl::StatusOr<storage::v1::VerifiedCheckpoint> DecodeCheckpoint(absl::string_view bytes) {
  if (bytes.size() < kHashSize) {
    return absl::DataLossError("verified checkpoint: value truncated");
  }
  const absl::string_view body = bytes.substr(0, bytes.size() - kHashSize);
  if (AsBytes(Sha256(body)) != bytes.substr(body.size())) {
    return absl::DataLossError("verified checkpoint: checksum mismatch");
  }
  storage::v1::VerifiedCheckpoint checkpoint;
  if (!checkpoint.ParseFromString(std::string(body)) ||
      (checkpoint.position() > 0 && checkpoint.hash().size() != kHashSize)) {
    return absl::DataLossError("verified checkpoint: malformed body");
  }
  return checkpoint;
}

uint32_t StatsPeriod(absl::Time time) {
  const int64_t seconds = absl::ToUnixSeconds(time);
  const int64_t period = seconds >= 0 ? seconds / kStatsPeriodSeconds : 0;
  return static_cast<uint32_t>(std::clamp<int64_t>(period, 1, 0xFFFFFFFFLL));
}

absl::Time StatsPeriodStart(uint32_t period) {
  return absl::FromUnixSeconds(static_cast<int64_t>(period) * kStatsPeriodSeconds);
}

std::string StatsPracticePrefix(char tag, absl::string_view practice_id) {
  return absl::StrCat(absl::string_view(&tag, 1), practice_id, absl::string_view("\0", 1));
}

std::string StatsKey(char tag, absl::string_view practice_id, uint32_t period,
                     absl::string_view assignee, v1::TaskCategory category,
                     absl::string_view task_id) {
  std::string key = StatsPracticePrefix(tag, practice_id);
  AppendFixed32BE(&key, period);
  absl::StrAppend(&key, assignee, absl::string_view("\0", 1));
  key.push_back(static_cast<char>(static_cast<uint8_t>(category)));
  key.append(task_id.data(), task_id.size());
  return key;
}

bool ParseStatsSuffix(absl::string_view suffix, uint32_t* period, std::string* assignee,
                      v1::TaskCategory* category) {
  if (suffix.size() < 6 || !DecodeFixed32BE(suffix.substr(0, 4), period)) return false;
  const std::size_t end = suffix.find('\0', 4);
  if (end == absl::string_view::npos || end + 2 > suffix.size()) return false;
  *assignee = std::string(suffix.substr(4, end - 4));
  *category = static_cast<v1::TaskCategory>(static_cast<uint8_t>(suffix[end + 1]));
  return true;
}

std::string StatsTaskKey(absl::string_view task_id) { return absl::StrCat("t", task_id); }

std::string EncodeMessage(const google::protobuf::Message& message) {
  return SerializeDeterministic(message);
}

}  // namespace outreach::store::keys
