// Key and value encodings of every column family the store writes (format version 1).
//
// Numbers are big-endian so that RocksDB's bytewise key order is numeric order. Ids (task ids,
// patient ids, assignees, request ids) are 1-64 characters of [A-Za-z0-9._:-] (domain/
// validation.h), so they never contain '\0' and '\0' can end a variable-length id inside a key.
//
//   "default" (metadata):
//     "head"              -> position: fixed64_be | hash: byte[32]      (the last event; absent
//                                                                      while the log is empty)
//     "checkpoint"        -> body | checksum: byte[32]
//                            body := serialized outreach.storage.v1.VerifiedCheckpoint
//                            checksum := SHA-256(body)
//                            (the log is known good through body.position; Open re-verifies
//                            only from there. Written by Open after verifying, and by the
//                            writer in the batch that takes the log StoreOptions::
//                            checkpoint_every (65,536) events past the last one: those events
//                            carry the hashes the writer computed, so a start-up after a long
//                            session does not re-read the whole session)
//     "projection_format" -> fixed32_be (kProjectionFormat; any other value or none with a
//                            non-empty log makes Open rebuild every projection from the log)
//     "projection_schema" -> fixed32_be (the StoredEvent schema version the projections were
//                            folded at; absent = 1. Projections are folds of upcast events, so
//                            a store whose SchemaRegistry is at another version rebuilds them)
//   "events":   see store/event_codec.h
//   "streams":  task_id '\0' version: fixed64_be -> position: fixed64_be
//   "tasks":    task_id -> deterministic serialization of the outreach.v1.Task projection
//               (format 4: the Task has issue 13's fields, practice "default" and category
//               CUSTOM for tasks of schema version 1 events, so older rows are rebuilt)
//   "worklist": scope_tag: u8 | scope_value | '\0' | status: u8 | day_key: fixed32_be
//                 | urgency: u8 | task_id
//                 -> kind: u8 | category: u8 | patient_id | '\0' | assignee | '\0' | practice_id
//               scope_tag := 'k' (kind; decimal enum number) | 'p' (patient_id)
//                          | 'u' (assignee; only when the task has one)
//                          | 'r' (practice_id)
//               status    := the outreach.v1.TaskStatus number
//               day_key   := days from 1970-01-01 to follow_up_date + kDayOffset,
//                            or kNoFollowUpDay (0xFFFFFFFF, sorts last) without one
//               urgency   := 0 for URGENT, 1 for ROUTINE (UrgencyRank): on one follow-up day
//                            URGENT tasks come first
//               category  := the outreach.v1.TaskCategory number
//               Every task has one row per scope it belongs to, in every status (closed ones too).
//               The scopes serve ListTasks (store/worklist.h); the value serves the filters
//               checked per row (kind, patient, assignee or none, category, practice).
//               History: format 1 also had 'a', every task in one scope; format 2 serves the
//               unfiltered worklist by merging the kinds' scopes (one row pair fewer for the
//               writer at every follow-up change). Format 6 adds the urgency byte, the 'r' scope
//               and the value's category and practice_id (issue 13's ListTasks filters); a store
//               at format 5 or older rebuilds its projections at start-up.
//   "expiry":   expires_at: fixed64_be(unix micros XOR 2^63) | task_id -> empty
//               (only open automatic tasks; the XOR makes signed order bytewise order)
//   "requests": actor '\0' request_id -> serialized outreach.storage.v1.RequestRecord
//               (format 3: request ids are scoped by the actor, the authenticated principal, so
//               that one principal can neither block nor probe another's; format 2 keyed them
//               by request_id alone)
//   "patients": practice_id '\0' patient_id -> deterministic serialization of
//               outreach.storage.v1.PatientRow (store/projections/patients.h; format 5)
//   "access_log": the read-access audit log, see store/access_log.h (not a projection; a
//               database written before it existed gets it, empty, at the next read-write open)
//   "stats":    (format 8; store/projections/outreach_stats.h)
//               'b' practice_id '\0' period: fixed32_be assignee '\0' category: u8
//                 -> deterministic serialization of outreach.storage.v1.StatsBucket
//               't' task_id -> deterministic serialization of outreach.storage.v1.StatsTask
//               period := unix seconds / 900 (15 minutes: every time zone's midnight is a
//               period boundary, so a report's days in --time-zone are whole ranges of periods)
//   "consumers": the durable consumers' checkpoints, see store/consumer_checkpoints.h (not a
//               projection: never rebuilt; created empty like "access_log")
//   "keys":     an encrypted store's per-patient data keys (store/privacy.h): practice_id '\0'
//               pseudonym -> serialized outreach.storage.v1.DataKeyRow (not a projection: a
//               destroyed key is never rebuilt; created empty like "access_log")
//     and in "default": "privacy" -> serialized outreach.storage.v1.PrivacyRow (present once the
//               store is encrypted)
//
// A reader that finds a projection_format it does not know rebuilds the projections (everything
// but "events" and the "head"/"checkpoint" rows) from the log. Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/civil_time.h"
#include "absl/time/time.h"
#include "outreach/v1/storage.pb.h"
#include "outreach/v1/task.pb.h"

namespace outreach::store::keys {

// Column families, in the order Open creates their handles.
enum Cf : int {
  kDefault = 0, kEvents, kStreams, kTasks, kWorklist, kExpiry, kRequests, kPatients, kAccessLog,
  kConsumers, kStats, kKeys, kNumCfs
};
// The RocksDB name of each column family, indexed by Cf.
const std::vector<std::string>& ColumnFamilyNames();
// The column families that are a pure fold of the log (rebuilt, verified and dumped) are those
// of the registered projections: store/projections/registry.h ProjectionFamilies().

// 5: the "patients" projection; 6: the worklist's urgency byte, practice scope and filtered
// fields (see "worklist" above); 7: the "stats" projection (a store at 6 or older has no stats
// rows, so it rebuilds every projection at its next start-up); 8: a "stats" task row lists each
// (period, assignee) of its contacts once, not once per contact.
inline constexpr uint32_t kProjectionFormat = 8;
inline constexpr char kHeadKey[] = "head";
inline constexpr char kCheckpointKey[] = "checkpoint";
inline constexpr char kProjectionFormatKey[] = "projection_format";
inline constexpr char kProjectionSchemaKey[] = "projection_schema";
inline constexpr char kPrivacyKey[] = "privacy";

// Fixed-width big-endian numbers.
std::string EncodeFixed64BE(uint64_t value);
std::string EncodeFixed32BE(uint32_t value);
// False unless `bytes` is exactly 8 (or 4) bytes.
bool DecodeFixed64BE(absl::string_view bytes, uint64_t* value);
bool DecodeFixed32BE(absl::string_view bytes, uint32_t* value);

// "events"
std::string EventKey(uint64_t position);
bool ParseEventKey(absl::string_view key, uint64_t* position);

// "streams"
std::string StreamPrefix(absl::string_view task_id);
std::string StreamKey(absl::string_view task_id, int64_t version);

// "expiry"
std::string ExpiryTimeKey(int64_t unix_micros);  // the key prefix for one instant
std::string ExpiryKey(absl::Time expires_at, absl::string_view task_id);
bool ParseExpiryKey(absl::string_view key, absl::Time* expires_at, std::string* task_id);

// "worklist"
enum class Scope : char { kKind = 'k', kPatient = 'p', kAssignee = 'u', kPractice = 'r' };
inline constexpr uint32_t kDayOffset = 1u << 20;
inline constexpr uint32_t kNoFollowUpDay = 0xFFFFFFFFu;

uint32_t DayKey(absl::CivilDay day);
// kNoFollowUpDay for an empty or unparsable date.
uint32_t DayKeyOfDate(absl::string_view follow_up_date);
// scope_tag | scope_value | '\0' | status: every row of one scope and status starts with it.
std::string WorklistPrefix(Scope scope, absl::string_view scope_value, v1::TaskStatus status);
std::string KindScopeValue(v1::TaskKind kind);
// 0 for URGENT, 1 for anything else (ROUTINE, or unset, which reads as ROUTINE).
uint8_t UrgencyRank(v1::TaskPriority priority);
// prefix | day_key | urgency | task_id
std::string WorklistKey(absl::string_view prefix, uint32_t day_key, uint8_t urgency,
                        absl::string_view task_id);
// Splits what follows the prefix; false if malformed.
bool ParseWorklistSuffix(absl::string_view suffix, uint32_t* day_key, uint8_t* urgency,
                         std::string* task_id);

struct WorklistValue {
  v1::TaskKind kind = v1::TASK_KIND_UNSPECIFIED;
  v1::TaskCategory category = v1::TASK_CATEGORY_UNSPECIFIED;
  std::string patient_id;
  std::string assignee;
  std::string practice_id;
};
std::string EncodeWorklistValue(const WorklistValue& value);
bool DecodeWorklistValue(absl::string_view bytes, WorklistValue* value);

// The index rows a task's projection owns.
struct IndexRows {
  std::vector<std::pair<std::string, std::string>> worklist;
  std::optional<std::string> expiry;  // set for open automatic tasks only
};
IndexRows IndexRowsFor(const v1::Task& task);
// The same rows without the copies: `worklist(key, value)` for each worklist row, then
// `expiry(key)` for the expiry row if there is one. The views are valid during the call only.
void ForEachIndexRow(const v1::Task& task,
                     absl::FunctionRef<void(absl::string_view, absl::string_view)> worklist,
                     absl::FunctionRef<void(absl::string_view)> expiry);
// The worklist rows alone: `worklist(key, value)` for each (views valid during the call).
void ForEachWorklistRow(const v1::Task& task,
                        absl::FunctionRef<void(absl::string_view, absl::string_view)> worklist);
// The expiry row's key, for open automatic tasks only.
std::optional<std::string> ExpiryRowFor(const v1::Task& task);

// "tasks": the deterministic serialization of a projection.
std::string EncodeTask(const v1::Task& task);
// The same row from a task kept in two parts, its Contact messages as bytes: the writer's task
// states and the rebuild's fold never hold a task's whole contact history as messages, and
// append to it without copying it. `contacts` is Task.contacts as the row encodes it, one
// contact after another, each its tag, length and Contact (AppendContactBytes).
//   EncodeTaskRow(task without contacts, contacts) == EncodeTask(the task with them)
//   DecodeTaskRow(EncodeTask(t)) == (t without its contacts, its contacts' bytes)
// DATA_LOSS when a row does not parse (or, encoding, INTERNAL when the task's own bytes do not).
std::size_t ContactBytesSize(const v1::Contact& contact);  // caches the Contact's size
void WriteContactBytes(const v1::Contact& contact, char* out);  // ContactBytesSize's bytes
void AppendContactBytes(const v1::Contact& contact, std::string* contacts);
absl::Status EncodeTaskRow(const v1::Task& task, absl::string_view contacts, std::string* row);
absl::Status DecodeTaskRow(absl::string_view row, v1::Task* task, std::string* contacts);

// "requests": the key of `actor`'s request_id (ids hold no '\0').
std::string RequestKey(absl::string_view actor, absl::string_view request_id);
std::string PatientKey(absl::string_view practice_id, absl::string_view patient_id);
std::string EncodePatientRow(const storage::v1::PatientRow& row);
// "requests": the deterministic serialization of an idempotency record.
std::string EncodeRequestRecord(const storage::v1::RequestRecord& record);

// "stats"
inline constexpr int64_t kStatsPeriodSeconds = 900;
uint32_t StatsPeriod(absl::Time time);  // clamped to 1.. (0 means "none" in the rows)
absl::Time StatsPeriodStart(uint32_t period);
inline constexpr char kStatsBucketTag = 'b';
// tag practice_id '\0'
std::string StatsPracticePrefix(char tag, absl::string_view practice_id);
// A bucket key ('b'), or with a task_id a sample key ('f', 's').
std::string StatsKey(char tag, absl::string_view practice_id, uint32_t period,
                     absl::string_view assignee, v1::TaskCategory category,
                     absl::string_view task_id = "");
// What follows StatsPracticePrefix (a sample key's task_id is left out); false if malformed.
bool ParseStatsSuffix(absl::string_view suffix, uint32_t* period, std::string* assignee,
                      v1::TaskCategory* category);
std::string StatsTaskKey(absl::string_view task_id);
// Deterministic serialization (sorted map keys), like the task rows.
std::string EncodeMessage(const google::protobuf::Message& message);

// "default" metadata rows.
std::string EncodeHead(uint64_t position, absl::string_view hash);
bool DecodeHead(absl::string_view bytes, uint64_t* position, std::string* hash);
std::string EncodeCheckpoint(const storage::v1::VerifiedCheckpoint& checkpoint);
// DATA_LOSS when the checksum or the body is bad.
absl::StatusOr<storage::v1::VerifiedCheckpoint> DecodeCheckpoint(absl::string_view bytes);

}  // namespace outreach::store::keys
