#include "store/consumer_checkpoints.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "store/keys.h"
#include "store/rocks.h"

namespace outreach::store {
namespace {

std::string EncodeCheckpoint(uint64_t position, absl::Time acked_at) {
  return absl::StrCat(keys::EncodeFixed64BE(position),
                      keys::EncodeFixed64BE(static_cast<uint64_t>(absl::ToUnixMicros(acked_at))));
}

absl::StatusOr<ConsumerCheckpoint> DecodeCheckpoint(absl::string_view name,
                                                    absl::string_view bytes) {
  ConsumerCheckpoint checkpoint;
  checkpoint.name = std::string(name);
  uint64_t micros = 0;
  if (bytes.size() != 16 || !keys::DecodeFixed64BE(bytes.substr(0, 8), &checkpoint.position) ||
      !keys::DecodeFixed64BE(bytes.substr(8), &micros)) {
    return absl::DataLossError(absl::StrCat("consumers: malformed checkpoint of ", name));
  }
  checkpoint.acked_at = absl::FromUnixMicros(static_cast<int64_t>(micros));
  return checkpoint;
}

}  // namespace

ConsumerCheckpoints::ConsumerCheckpoints(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family,
                                         Clock* clock, std::function<uint64_t()> head, bool sync,
                                         bool read_only)
    : db_(db),
      family_(family),
      clock_(clock != nullptr ? clock : Clock::Real()),
      head_(std::move(head)),
      sync_(sync) {
  if (read_only) return;
  GroupCommitOptions options;
  options.clock = clock_;
  options.refusal = absl::FailedPreconditionError("consumer checkpoints closed");
  writer_ = std::make_unique<Writer>(
      [this](std::vector<AckItem>& items) { return WriteBatchOf(items); }, std::move(options));
}

ConsumerCheckpoints::~ConsumerCheckpoints() { writer_.reset(); }

void ConsumerCheckpoints::Ack(std::string consumer, uint64_t position, Done done) {
  if (writer_ == nullptr) {
    std::move(done)(absl::FailedPreconditionError("store is open read-only: acks are refused"));
    return;
  }
  if (position == 0) {
    std::move(done)(absl::InvalidArgumentError("position: must be at least 1"));
    return;
  }
  writer_->Submit(AckItem{std::move(consumer), position},
                  [done = std::move(done)](absl::StatusOr<AckResult> result) mutable {
                    std::move(done)(std::move(result));
                  });
}

absl::StatusOr<AckResult> ConsumerCheckpoints::AckAndWait(std::string consumer,
                                                          uint64_t position) {
  absl::Notification acked;
  absl::StatusOr<AckResult> out = absl::UnknownError("not run");
  Ack(std::move(consumer), position, [&](absl::StatusOr<AckResult> result) {
    out = std::move(result);
    acked.Notify();
  });
  acked.WaitForNotification();
  return out;
}

// The writer thread: the only writer of the family, so the stored checkpoints it reads are the
// latest; `pending` holds this batch's own.
std::vector<absl::StatusOr<AckResult>> ConsumerCheckpoints::WriteBatchOf(
    std::vector<AckItem>& items) {
  std::vector<absl::StatusOr<AckResult>> results;
  std::map<std::string, uint64_t> pending;
  rocksdb::WriteBatch batch;
  const uint64_t head = head_();
  const absl::Time now = clock_->Now();
  for (AckItem& item : items) {
    if (item.position > head) {
      results.push_back(absl::OutOfRangeError(absl::StrCat(
          "position: ", item.position, " is past the head of the log (", head, ")")));
      continue;
    }
    uint64_t stored = 0;
    if (auto it = pending.find(item.consumer); it != pending.end()) {
      stored = it->second;
    } else {
      absl::StatusOr<std::optional<ConsumerCheckpoint>> current = Get(item.consumer);
      if (!current.ok()) {
        results.push_back(current.status());
        continue;
      }
      if (current->has_value()) stored = (*current)->position;
    }
    if (item.position <= stored) {
      results.push_back(AckResult{stored, false});
      continue;
    }
    pending[item.consumer] = item.position;
    batch.Put(family_, ToSlice(item.consumer), ToSlice(EncodeCheckpoint(item.position, now)));
    results.push_back(AckResult{item.position, true});
  }
  if (batch.Count() == 0) return results;
  rocksdb::WriteOptions write;
  write.sync = sync_;
  absl::Status written = FromRocks(db_->Write(write, &batch), "writing consumer checkpoints");
  if (!written.ok()) {
    for (absl::StatusOr<AckResult>& result : results) {
      if (result.ok() && result->advanced) result = UnsharedCopy(written);
    }
  }
  return results;
}

absl::StatusOr<std::optional<ConsumerCheckpoint>> ConsumerCheckpoints::Get(
    absl::string_view consumer) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), family_, ToSlice(consumer), &value);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) return FromRocks(s, "reading a consumer checkpoint");
  absl::StatusOr<ConsumerCheckpoint> checkpoint = DecodeCheckpoint(consumer, value);
  if (!checkpoint.ok()) return checkpoint.status();
  return *std::move(checkpoint);
}

absl::StatusOr<std::vector<ConsumerCheckpoint>> ConsumerCheckpoints::List() const {
  std::vector<ConsumerCheckpoint> out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), family_));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    absl::StatusOr<ConsumerCheckpoint> checkpoint =
        DecodeCheckpoint(View(it->key()), View(it->value()));
    if (!checkpoint.ok()) return checkpoint.status();
    out.push_back(*std::move(checkpoint));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "listing consumer checkpoints");
  return out;
}

}  // namespace outreach::store
