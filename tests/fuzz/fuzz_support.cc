#include "tests/fuzz/fuzz_support.h"

#include <cstdio>
#include <cstdlib>
#include <utility>
#include <variant>

#include "absl/strings/str_cat.h"
#include "absl/time/civil_time.h"
#include "domain/validation.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/stubs/logging.h"
#include "store/event_codec.h"
#include "store/keys.h"

namespace outreach::fuzz {
namespace {

using storage::v1::StoredEvent;

constexpr char kBaseTaskId[] = "fuzz-task";

// What the store adds to a decided event before it applies and writes it
// (store/event_store.cc, Writer): schema version, position, task id, stream version, event id
// and recorded_at.
void Stamp(StoredEvent& event, absl::string_view task_id, int64_t version, uint64_t position,
           absl::Time recorded_at) {
  event.set_schema_version(store::kEventSchemaVersion);
  event.set_position(position);
  event.set_task_id(std::string(task_id));
  event.set_version(version);
  event.set_event_id(absl::StrCat("event-", position));
  *event.mutable_recorded_at() = domain::ToProto(recorded_at);
}

// Decides `command` at `at` against `state`, stamps and applies its events, as the store would.
void Given(FixedState& state, const domain::Command& command, absl::Time at) {
  absl::StatusOr<std::vector<domain::NewEvent>> decided =
      domain::Decide(state.task, command, domain::DecideContext{at, absl::UTCTimeZone()});
  if (!decided.ok()) {
    Fail(absl::StrCat(state.name, ": setting up the fixed state: ", decided.status().ToString()));
  }
  v1::Task next = state.task.value_or(v1::Task());
  for (domain::NewEvent& ne : *decided) {
    StoredEvent event = std::move(ne.event);
    Stamp(event, kBaseTaskId, next.version() + 1, state.events.size() + 1, at);
    if (absl::Status s = domain::Apply(next, event); !s.ok()) {
      Fail(absl::StrCat(state.name, ": setting up the fixed state: ", s.ToString()));
    }
    state.events.push_back(std::move(event));
  }
  state.task = std::move(next);
}

domain::CreateTaskCommand Create(v1::TaskKind kind, std::optional<absl::Time> expires_at) {
  domain::CreateTaskCommand c;
  c.task_id = kBaseTaskId;
  c.patient_id = "patient-1";
  c.kind = kind;
  c.title = "Book annual wellness visit";
  c.assignee = "coordinator-1";
  c.expires_at = expires_at;
  c.meta.actor = "care-gap-engine";
  return c;
}

domain::LogContactCommand Contact(bool close_task) {
  domain::LogContactCommand c;
  c.task_id = kBaseTaskId;
  c.outcome = close_task ? v1::SCHEDULED : v1::NO_ANSWER;
  c.notes = "called the mobile number";
  c.follow_up_date = close_task ? "" : "2025-03-12";
  c.close_task = close_task;
  c.meta.actor = "coordinator-1";
  return c;
}

std::vector<FixedState> BuildBaseStates() {
  const absl::Time created = Now() - absl::Hours(48);
  const absl::Time contacted = Now() - absl::Hours(47);
  std::vector<FixedState> states;
  states.push_back(FixedState{"no task", std::nullopt, {}});

  FixedState open{"open manual", std::nullopt, {}};
  Given(open, Create(v1::MANUAL, std::nullopt), created);
  states.push_back(open);

  FixedState automatic{"open automatic", std::nullopt, {}};
  Given(automatic, Create(v1::AUTOMATIC, Now() + absl::Hours(24)), created);
  states.push_back(automatic);

  FixedState in_progress{"in progress", std::nullopt, {}};
  Given(in_progress, Create(v1::MANUAL, std::nullopt), created);
  Given(in_progress, Contact(/*close_task=*/false), contacted);
  states.push_back(in_progress);

  FixedState closed{"closed", std::nullopt, {}};
  Given(closed, Create(v1::MANUAL, std::nullopt), created);
  Given(closed, Contact(/*close_task=*/true), contacted);
  states.push_back(closed);

  // Past its expiry, but the expiry closer has not written its event yet.
  FixedState expired{"automatic expired", std::nullopt, {}};
  Given(expired, Create(v1::AUTOMATIC, Now() - absl::Hours(1)), created);
  states.push_back(expired);
  return states;
}

// Checks the state an OK command left behind against what the command promises.
void CheckOutcome(const FixedState& before, const domain::Command& command, std::size_t count,
                  const v1::Task& after) {
  const int64_t old_version = before.task.has_value() ? before.task->version() : 0;
  const std::string where = absl::StrCat(before.name, ": ");
  if (after.version() != old_version + static_cast<int64_t>(count)) {
    Fail(absl::StrCat(where, "version ", after.version(), " after ", count, " events on version ",
                      old_version));
  }
  if (count > 0 && after.task_id() != domain::TaskIdOf(command)) {
    Fail(absl::StrCat(where, "the task id changed to \"", after.task_id(), "\""));
  }
  if (const auto* c = std::get_if<domain::CreateTaskCommand>(&command)) {
    if (before.task.has_value()) Fail(where + "create succeeded on an existing task");
    if (count != 1 || after.status() != v1::OPEN || after.kind() != c->kind ||
        after.patient_id() != c->patient_id || after.created_by() != c->meta.actor) {
      Fail(absl::StrCat(where, "create left ", after.DebugString()));
    }
    return;
  }
  if (const auto* c = std::get_if<domain::LogContactCommand>(&command)) {
    if (!before.task.has_value() || before.task->status() == v1::CLOSED ||
        domain::IsExpired(*before.task, Now())) {
      Fail(where + "a contact was accepted on a missing, closed or expired task");
    }
    // Log and Close (DO_NOT_CONTACT for REQUESTED_NO_CONTACT); Log Contact (the given date, or
    // the cadence's); or the contact that reaches max_attempts, closed with MAX_ATTEMPTS.
    const v1::CloseReason close_reason =
        c->outcome == v1::REQUESTED_NO_CONTACT ? v1::DO_NOT_CONTACT : v1::CONTACT_OUTCOME;
    const bool shape_ok =
        c->close_task
            ? count == 2 && after.status() == v1::CLOSED && after.close_reason() == close_reason &&
                  after.closing_outcome() == c->outcome && after.follow_up_date().empty()
            : (count == 1 && after.status() == v1::IN_PROGRESS &&
               (c->follow_up_date.empty() ? !after.follow_up_date().empty()
                                          : after.follow_up_date() == c->follow_up_date)) ||
                  (count == 2 && after.status() == v1::CLOSED &&
                   after.close_reason() == v1::MAX_ATTEMPTS);
    if (!shape_ok || after.contacts_size() != before.task->contacts_size() + 1 ||
        after.contacts(after.contacts_size() - 1).outcome() != c->outcome) {
      Fail(absl::StrCat(where, "contact left ", after.DebugString()));
    }
    return;
  }
  if (count > 1 || (count == 1 && (after.status() != v1::CLOSED ||
                                   after.close_reason() != v1::EXPIRED))) {
    Fail(absl::StrCat(where, "expiry left ", after.DebugString()));
  }
}

// The expiry closer, later, on whatever the command left: exactly at expires_at an open
// automatic task expires (and Apply takes the event); a nanosecond before, it does not.
void CheckLaterExpiry(const std::string& name, const v1::Task& task,
                      std::vector<StoredEvent> stream) {
  const domain::ExpireTaskCommand expire{task.task_id()};
  if (task.kind() != v1::AUTOMATIC || task.status() == v1::CLOSED) {
    const absl::StatusOr<std::vector<domain::NewEvent>> decided =
        domain::Decide(task, expire, domain::DecideContext{Now() + absl::Hours(24 * 365),
                                                           absl::UTCTimeZone()});
    if (task.status() == v1::CLOSED) {
      if (!decided.ok() || !decided->empty()) {
        Fail(name + ": expiring a closed task must be a no-op");
      }
    } else {
      CheckCode(name + ": expiring a manual task", decided.status(),
                {absl::StatusCode::kFailedPrecondition});
    }
    return;
  }
  const absl::Time expires_at = domain::FromProto(task.expires_at());
  const absl::StatusOr<std::vector<domain::NewEvent>> early = domain::Decide(
      task, expire, domain::DecideContext{expires_at - absl::Nanoseconds(1), absl::UTCTimeZone()});
  CheckCode(name + ": expiring before expires_at", early.status(),
            {absl::StatusCode::kFailedPrecondition});
  const absl::Time at = std::max(Now(), expires_at);
  absl::StatusOr<std::vector<domain::NewEvent>> decided =
      domain::Decide(task, expire, domain::DecideContext{at, absl::UTCTimeZone()});
  if (!decided.ok() || decided->size() != 1) {
    Fail(absl::StrCat(name, ": expiring at expires_at: ", decided.status().ToString()));
  }
  v1::Task next = task;
  StoredEvent event = std::move((*decided)[0].event);
  Stamp(event, task.task_id(), next.version() + 1, stream.size() + 1, at);
  if (absl::Status s = domain::Apply(next, event); !s.ok()) {
    Fail(absl::StrCat(name, ": Apply rejected the expiry event: ", s.ToString()));
  }
  if (next.status() != v1::CLOSED || next.close_reason() != v1::EXPIRED) {
    Fail(absl::StrCat(name, ": expiry left ", next.DebugString()));
  }
  CheckCodecRoundTrip(event);
}

}  // namespace

absl::Time Now() {
  return absl::FromCivil(absl::CivilSecond(2025, 3, 10, 15, 0, 0), absl::UTCTimeZone());
}

domain::DecideContext Context() { return domain::DecideContext{Now(), absl::UTCTimeZone()}; }

std::vector<FixedState> FixedStates(absl::string_view task_id) {
  static const std::vector<FixedState>* const kBase = new std::vector<FixedState>(BuildBaseStates());
  std::vector<FixedState> states = *kBase;
  for (FixedState& state : states) {
    if (state.task.has_value()) state.task->set_task_id(std::string(task_id));
    for (StoredEvent& event : state.events) event.set_task_id(std::string(task_id));
  }
  return states;
}

void Fail(absl::string_view what) {
  std::fprintf(stderr, "invariant violated: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

void CheckCode(absl::string_view where, const absl::Status& status,
               std::initializer_list<absl::StatusCode> allowed) {
  for (absl::StatusCode code : allowed) {
    if (status.code() == code) return;
  }
  Fail(absl::StrCat(where, ": unexpected status ", status.ToString()));
}

void CheckDecide(const domain::Command& command) {
  const std::string& task_id = domain::TaskIdOf(command);
  for (const FixedState& state : FixedStates(task_id)) {
    absl::StatusOr<std::vector<domain::NewEvent>> decided =
        domain::Decide(state.task, command, Context());
    if (!decided.ok()) {
      CheckCode(absl::StrCat(state.name, ": Decide"), decided.status(),
                {absl::StatusCode::kInvalidArgument, absl::StatusCode::kNotFound,
                 absl::StatusCode::kAlreadyExists, absl::StatusCode::kFailedPrecondition,
                 absl::StatusCode::kAborted});
      continue;
    }
    v1::Task next = state.task.value_or(v1::Task());
    std::vector<StoredEvent> stream = state.events;
    std::size_t task_events = 0;
    for (domain::NewEvent& ne : *decided) {
      StoredEvent event = std::move(ne.event);
      if (domain::IsPatientStream(event.task_id())) {
        // REQUESTED_NO_CONTACT: the patient's do-not-contact, on the patient's own stream.
        if (!event.has_contact_preference_set() ||
            !event.contact_preference_set().do_not_contact()) {
          Fail(absl::StrCat(state.name, ": a patient's stream got an unexpected event\n",
                            event.DebugString()));
        }
        continue;
      }
      ++task_events;
      Stamp(event, task_id, next.version() + 1, stream.size() + 1, Now());
      if (absl::Status s = domain::Apply(next, event); !s.ok()) {
        Fail(absl::StrCat(state.name, ": Apply rejected an event Decide produced: ", s.ToString(),
                          "\n", event.DebugString()));
      }
      CheckCodecRoundTrip(event);
      stream.push_back(std::move(event));
    }
    CheckOutcome(state, command, task_events, next);

    // A projection is exactly the fold of its stream: a rebuild from the log gives the same bytes.
    v1::Task rebuilt;
    for (const StoredEvent& event : stream) {
      if (absl::Status s = domain::Apply(rebuilt, event); !s.ok()) {
        Fail(absl::StrCat(state.name, ": rebuilding from the stream: ", s.ToString()));
      }
    }
    if (Bytes(rebuilt) != Bytes(next)) {
      Fail(absl::StrCat(state.name, ": the rebuilt projection differs from the live one"));
    }
    if (!stream.empty()) CheckProjectionRows(next);
    if (!stream.empty()) CheckLaterExpiry(state.name, next, std::move(stream));
  }
}

void CheckProjectionRows(const v1::Task& task) {
  v1::Task parsed;
  if (!parsed.ParseFromString(store::keys::EncodeTask(task)) || Bytes(parsed) != Bytes(task)) {
    Fail(absl::StrCat("the \"tasks\" row does not parse back to the task:\n", task.DebugString()));
  }
  const uint32_t day_key = store::keys::DayKeyOfDate(task.follow_up_date());
  if (task.follow_up_date().empty() != (day_key == store::keys::kNoFollowUpDay)) {
    Fail(absl::StrCat("follow_up_date \"", task.follow_up_date(), "\" has day key ", day_key));
  }
  const store::keys::IndexRows rows = store::keys::IndexRowsFor(task);
  std::vector<std::string> prefixes = {
      store::keys::WorklistPrefix(store::keys::Scope::kKind,
                                  store::keys::KindScopeValue(task.kind()), task.status()),
      store::keys::WorklistPrefix(store::keys::Scope::kPatient, task.patient_id(),
                                  task.status())};
  if (!task.assignee().empty()) {
    prefixes.push_back(store::keys::WorklistPrefix(store::keys::Scope::kAssignee, task.assignee(),
                                                   task.status()));
  }
  prefixes.push_back(store::keys::WorklistPrefix(store::keys::Scope::kPractice,
                                                 task.practice_id(), task.status()));
  if (rows.worklist.size() != prefixes.size()) {
    Fail(absl::StrCat(rows.worklist.size(), " worklist rows for ", prefixes.size(), " scopes"));
  }
  for (std::size_t i = 0; i < prefixes.size(); ++i) {
    const auto& [key, value] = rows.worklist[i];
    uint32_t parsed_day = 0;
    uint8_t parsed_urgency = 0;
    std::string parsed_id;
    store::keys::WorklistValue parsed_value;
    if (key.rfind(prefixes[i], 0) != 0 ||
        !store::keys::ParseWorklistSuffix(absl::string_view(key).substr(prefixes[i].size()),
                                          &parsed_day, &parsed_urgency, &parsed_id) ||
        parsed_day != day_key || parsed_id != task.task_id() ||
        parsed_urgency != store::keys::UrgencyRank(task.priority()) ||
        !store::keys::DecodeWorklistValue(value, &parsed_value) ||
        parsed_value.kind != task.kind() || parsed_value.patient_id != task.patient_id() ||
        parsed_value.assignee != task.assignee() || parsed_value.category != task.category() ||
        parsed_value.practice_id != task.practice_id()) {
      Fail(absl::StrCat("worklist row ", i, " does not parse back:\n", task.DebugString()));
    }
  }
  const bool wants_expiry =
      task.kind() == v1::AUTOMATIC && task.status() != v1::CLOSED && task.has_expires_at();
  if (rows.expiry.has_value() != wants_expiry) Fail("expiry row present iff open automatic");
  if (rows.expiry.has_value()) {
    absl::Time at;
    std::string parsed_id;
    const absl::Time want =
        absl::FromUnixMicros(absl::ToUnixMicros(domain::FromProto(task.expires_at())));
    if (!store::keys::ParseExpiryKey(*rows.expiry, &at, &parsed_id) || at != want ||
        parsed_id != task.task_id()) {
      Fail(absl::StrCat("the expiry row does not parse back:\n", task.DebugString()));
    }
  }
}

void CheckCodecRoundTrip(const StoredEvent& event) {
  store::Hash prev_hash = store::ZeroHash();
  prev_hash[0] = 0x5a;  // any chain position but the first
  store::Hash hash{};
  const std::string value = store::EncodeEvent(event, prev_hash, &hash);
  absl::StatusOr<store::DecodedEvent> decoded = store::DecodeEvent(event.position(), value);
  if (!decoded.ok()) {
    Fail(absl::StrCat("an event the store would write does not decode: ",
                      decoded.status().ToString(), "\n", event.DebugString()));
  }
  if (Bytes(decoded->event) != Bytes(event) || decoded->hash != hash ||
      decoded->prev_hash != prev_hash || !store::VerifyEventHash(*decoded)) {
    Fail(absl::StrCat("the event codec changed an event:\n", event.DebugString()));
  }
}

std::string Bytes(const google::protobuf::MessageLite& message) {
  std::string bytes;
  {
    google::protobuf::io::StringOutputStream stream(&bytes);
    google::protobuf::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    message.SerializeToCodedStream(&coded);
  }
  return bytes;
}

void QuietProtobufLogs() { google::protobuf::SetLogHandler(nullptr); }

}  // namespace outreach::fuzz
