#include "store/log_verifier.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "store/rocks.h"

namespace outreach::store {

namespace {

// A failed check: the first bad position and what is wrong there.
struct Problem {
  uint64_t position;
  std::string what;
};

// The stream rule for one event: versions follow each other within the range, and a stream
// first met after a checkpoint (`from` > 0) continues one that began before it.
std::optional<Problem> CheckStream(const LogReader& log, const rocksdb::ReadOptions& read,
                                   uint64_t from, bool projections_current,
                                   const DecodedEvent& event, uint64_t position,
                                   absl::flat_hash_map<std::string, int64_t>& versions) {
  const std::string& task_id = event.event.task_id();
  const int64_t version = event.event.version();
  auto seen = versions.find(task_id);
  if (seen != versions.end()) {
    if (version != seen->second + 1) {
      return Problem{position, absl::StrCat("task \"", task_id, "\" version ", version,
                                            " follows version ", seen->second)};
    }
  } else if (version < 1) {
    return Problem{position, absl::StrCat("task \"", task_id, "\" version ", version)};
  } else if (version > 1) {
    const bool continues =
        from > 0 && (!projections_current ||
                     log.StreamHasVersionBefore(read, task_id, version - 1, position));
    if (!continues) {
      return Problem{position, absl::StrCat("task \"", task_id, "\" version ", version,
                                            " does not follow its stream")};
    }
  }
  versions[task_id] = version;
  return std::nullopt;
}

// The head row against the last event checked (`report`).
std::optional<Problem> CheckHeadRow(const LogReader& log, const rocksdb::ReadOptions& read,
                                    const VerifyReport& report) {
  std::string raw;
  rocksdb::Status s = log.db()->Get(read, log.cf(keys::kDefault), keys::kHeadKey, &raw);
  uint64_t head = 0;
  std::string head_hash;
  if (s.ok()) {
    if (!keys::DecodeHead(raw, &head, &head_hash)) {
      return Problem{report.head_position, "the head row is malformed"};
    }
  } else if (!s.IsNotFound()) {
    return Problem{report.head_position, absl::StrCat("read error: ", s.ToString())};
  }
  if (head > report.head_position) {
    return Problem{report.head_position + 1,
                   absl::StrCat("missing (the head row says the log ends at position ", head, ")")};
  }
  if (head < report.head_position) {
    return Problem{head + 1, absl::StrCat("beyond the head row's position ", head)};
  }
  if (head > 0 && head_hash != report.head_hash) {
    return Problem{head, "hash does not match the head row"};
  }
  return std::nullopt;
}

}  // namespace

VerifyReport VerifyLogRange(const LogReader& log, const rocksdb::ReadOptions& read, uint64_t from,
                            const Hash& from_hash, bool projections_current, uint64_t to,
                            uint32_t* max_schema,
                            const std::function<void(uint64_t checked)>& progress) {
  VerifyReport report;
  report.head_position = from;
  report.head_hash = std::string(AsBytes(from_hash));
  auto fail = [&](uint64_t position, std::string problem) {
    report.ok = false;
    report.first_bad_position = position;
    report.problem = std::move(problem);
    return report;
  };
  absl::flat_hash_map<std::string, int64_t> versions;
  Hash prev = from_hash;
  uint64_t expected = from + 1;
  std::unique_ptr<rocksdb::Iterator> it(log.db()->NewIterator(read, log.cf(keys::kEvents)));
  for (it->Seek(keys::EventKey(expected)); it->Valid() && (to == 0 || expected <= to);
       it->Next(), ++expected) {
    uint64_t position = 0;
    if (!keys::ParseEventKey(View(it->key()), &position)) {
      return fail(expected, "malformed event key");
    }
    if (position != expected) {
      return fail(expected, absl::StrCat("missing (the next stored event is at position ",
                                         position, ")"));
    }
    absl::StatusOr<DecodedEvent> event = DecodeEvent(position, View(it->value()), log.schemas());
    if (!event.ok()) return fail(position, std::string(event.status().message()));
    if (max_schema != nullptr) *max_schema = std::max(*max_schema, event->stored_schema_version);
    if (event->prev_hash != prev) {
      return fail(position, "prev_hash does not match the previous event's hash");
    }
    if (!VerifyEventHash(*event)) return fail(position, "hash does not match the stored bytes");
    if (std::optional<Problem> p =
            CheckStream(log, read, from, projections_current, *event, position, versions)) {
      return fail(p->position, std::move(p->what));
    }
    prev = event->hash;
    ++report.events_checked;
    if (progress && report.events_checked % kVerifyProgressEvery == 0) {
      progress(report.events_checked);
    }
    report.head_position = position;
    report.head_hash = std::string(AsBytes(prev));
  }
  if (!it->status().ok()) {
    return fail(expected, absl::StrCat("read error: ", it->status().ToString()));
  }
  if (to != 0 && report.head_position >= to) return report;
  if (std::optional<Problem> p = CheckHeadRow(log, read, report)) {
    return fail(p->position, std::move(p->what));
  }
  return report;
}

absl::StatusOr<VerifyReport> VerifyLogAgainst(const LogReader& log,
                                              const rocksdb::ReadOptions& read,
                                              const VerifyOptions& options) {
  Hash expected{};
  const bool check_hash = !options.expected_head_hash.empty();
  if (check_hash && !HashFromBytes(options.expected_head_hash, &expected)) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected_head_hash: must be ", kHashSize, " bytes, got ",
                     options.expected_head_hash.size()));
  }
  VerifyReport report = VerifyLogRange(log, read, 0, ZeroHash(), /*projections_current=*/false,
                                       options.to_position, nullptr, options.progress);
  if (!report.ok) return report;
  if (options.to_position > report.head_position) {
    report.ok = false;
    report.first_bad_position = report.head_position + 1;
    report.problem = absl::StrCat("to_position ", options.to_position,
                                  " is beyond the head position ", report.head_position);
    return report;
  }
  if (check_hash && report.head_hash != AsBytes(expected)) {
    report.ok = false;
    report.first_bad_position = report.head_position;
    report.problem = absl::StrCat(
        "hash at position ", report.head_position, " is ",
        absl::BytesToHexString(report.head_hash), ", expected ",
        absl::BytesToHexString(AsBytes(expected)),
        ": the log through this position is not the one the expected hash was taken from");
  }
  return report;
}

}  // namespace outreach::store
