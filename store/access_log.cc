#include "store/access_log.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"
#include "store/keys.h"
#include "store/rocks.h"
#include "store/write_refusal.h"

namespace outreach::store {
namespace {

constexpr char kAnchorKey[] = "a";
constexpr char kRecordTag = 'r';
constexpr char kTimeTag = 't';
constexpr uint64_t kSignBit = uint64_t{1} << 63;
constexpr std::size_t kEnvelopeSize = 1 + 2 * kHashSize;

std::string RecordKey(uint64_t sequence) {
  return absl::StrCat(std::string(1, kRecordTag), keys::EncodeFixed64BE(sequence));
}

bool ParseRecordKey(absl::string_view key, uint64_t* sequence) {
  return key.size() == 9 && key[0] == kRecordTag &&
         keys::DecodeFixed64BE(key.substr(1), sequence);
}

std::string TimePrefix(int64_t micros) {
  return absl::StrCat(std::string(1, kTimeTag),
                      keys::EncodeFixed64BE(static_cast<uint64_t>(micros) ^ kSignBit));
}

std::string TimeKey(int64_t micros, uint64_t sequence) {
  return absl::StrCat(TimePrefix(micros), keys::EncodeFixed64BE(sequence));
}

int64_t ToMicros(absl::Time time) {
  if (time == absl::InfinitePast()) return std::numeric_limits<int64_t>::min();
  if (time == absl::InfiniteFuture()) return std::numeric_limits<int64_t>::max();
  return absl::ToUnixMicros(time);
}

absl::Time FromTimestamp(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

std::string EncodeAnchor(uint64_t first_sequence, const Hash& prev_hash) {
  return absl::StrCat(keys::EncodeFixed64BE(first_sequence), AsBytes(prev_hash));
}

struct Anchor {
  uint64_t first_sequence = 1;
  Hash prev_hash = ZeroHash();
};

absl::StatusOr<Anchor> ReadAnchor(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family,
                                  const rocksdb::ReadOptions& read) {
  std::string raw;
  rocksdb::Status s = db->Get(read, family, kAnchorKey, &raw);
  Anchor anchor;
  if (s.IsNotFound()) return anchor;
  if (!s.ok()) return FromRocks(s, "reading the access log anchor");
  if (raw.size() != 8 + kHashSize ||
      !keys::DecodeFixed64BE(absl::string_view(raw).substr(0, 8), &anchor.first_sequence) ||
      !HashFromBytes(absl::string_view(raw).substr(8), &anchor.prev_hash) ||
      anchor.first_sequence == 0) {
    return absl::DataLossError("access log: malformed anchor row");
  }
  return anchor;
}

// One parsed "r" row.
struct DecodedRecord {
  Hash prev_hash{};
  Hash hash{};
  absl::string_view body;
  storage::v1::AccessRecord record;
};

absl::StatusOr<DecodedRecord> DecodeRecord(uint64_t sequence, absl::string_view value) {
  auto bad = [sequence](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("access log record ", sequence, ": ", why));
  };
  if (value.size() < kEnvelopeSize) return bad("truncated envelope");
  if (static_cast<uint8_t>(value[0]) != kAccessFormatVersion) {
    return bad(absl::StrCat("unknown format version ", static_cast<int>(value[0])));
  }
  DecodedRecord decoded;
  HashFromBytes(value.substr(1, kHashSize), &decoded.prev_hash);
  HashFromBytes(value.substr(1 + kHashSize, kHashSize), &decoded.hash);
  decoded.body = value.substr(kEnvelopeSize);
  if (!decoded.record.ParseFromArray(decoded.body.data(), static_cast<int>(decoded.body.size()))) {
    return bad("unparsable body");
  }
  if (decoded.record.schema_version() == 0 ||
      decoded.record.schema_version() > kAccessSchemaVersion) {
    return bad(absl::StrCat("unsupported schema version ", decoded.record.schema_version()));
  }
  if (decoded.record.sequence() != sequence) {
    return bad(absl::StrCat("body says sequence ", decoded.record.sequence()));
  }
  return decoded;
}

// The "r" row of `entry` as record `sequence` at `micros` (moving the entry's strings), chained
// from `*hash`, which becomes the record's own hash.
std::string EncodeAccessRow(uint64_t sequence, int64_t micros, AccessEntry& entry, Hash* hash) {
  storage::v1::AccessRecord record;
  record.set_schema_version(kAccessSchemaVersion);
  record.set_sequence(sequence);
  // Floor division: a Timestamp's nanos are never negative.
  const int64_t seconds = micros / 1000000 - (micros % 1000000 < 0 ? 1 : 0);
  record.mutable_time()->set_seconds(seconds);
  record.mutable_time()->set_nanos(static_cast<int32_t>((micros - seconds * 1000000) * 1000));
  record.set_principal(std::move(entry.principal));
  record.set_on_behalf_of(std::move(entry.on_behalf_of));
  record.set_rpc(std::move(entry.rpc));
  for (std::string& id : entry.task_ids) record.add_task_ids(std::move(id));
  record.set_filter(std::move(entry.filter));
  record.set_count(entry.count);
  record.set_peer(std::move(entry.peer));
  if (CapAccessRecord(&record)) record.set_truncated(true);
  const std::string body = record.SerializeAsString();
  const Hash prev = *hash;
  *hash = ChainHash(prev, sequence, body);
  std::string value;
  value.reserve(kEnvelopeSize + body.size());
  value.push_back(static_cast<char>(kAccessFormatVersion));
  absl::StrAppend(&value, AsBytes(prev), AsBytes(*hash), body);
  return value;
}

}  // namespace

bool TruncateUtf8(std::string* text, std::size_t limit) {
  if (text->size() <= limit) return false;
  std::size_t end = limit;
  // (*text)[limit] exists; back off while it continues a sequence that starts before it.
  while (end > 0 && (static_cast<unsigned char>((*text)[end]) & 0xC0) == 0x80) --end;
  text->resize(end);
  return true;
}

bool CapAccessRecord(storage::v1::AccessRecord* record) {
  bool cut = false;
  cut |= TruncateUtf8(record->mutable_principal(), kMaxAccessIdBytes);
  cut |= TruncateUtf8(record->mutable_on_behalf_of(), kMaxAccessIdBytes);
  cut |= TruncateUtf8(record->mutable_rpc(), kMaxAccessRpcBytes);
  cut |= TruncateUtf8(record->mutable_filter(), kMaxAccessFilterBytes);
  cut |= TruncateUtf8(record->mutable_peer(), kMaxAccessPeerBytes);
  if (static_cast<std::size_t>(record->task_ids_size()) > kMaxAccessTaskIds) {
    record->mutable_task_ids()->DeleteSubrange(
        static_cast<int>(kMaxAccessTaskIds),
        record->task_ids_size() - static_cast<int>(kMaxAccessTaskIds));
    cut = true;
  }
  for (std::string& id : *record->mutable_task_ids()) cut |= TruncateUtf8(&id, kMaxAccessIdBytes);
  return cut;
}

AccessLog::AccessLog(rocksdb::DB* db, rocksdb::ColumnFamilyHandle* family, Clock* clock,
                     AccessLogOptions options, bool read_only)
    : db_(db),
      family_(family),
      clock_(clock != nullptr ? clock : Clock::Real()),
      options_(options),
      read_only_(read_only) {}

absl::StatusOr<std::unique_ptr<AccessLog>> AccessLog::Open(rocksdb::DB* db,
                                                           rocksdb::ColumnFamilyHandle* family,
                                                           Clock* clock, AccessLogOptions options,
                                                           bool read_only) {
  std::unique_ptr<AccessLog> log(new AccessLog(db, family, clock, options, read_only));
  if (absl::Status s = log->Load(); !s.ok()) return s;
  if (!read_only) log->StartWriter();
  return log;
}

void AccessLog::StartWriter() {
  GroupCommitOptions writer;
  writer.max_batch = options_.max_records_per_batch;
  writer.clock = clock_;
  writer.refusal = absl::FailedPreconditionError("access log closed");
  if (options_.retention > absl::ZeroDuration()) {
    writer.tick = [this] { RetainOnSchedule(); };
    writer.tick_every = options_.retention_check_every;
  }
  writer_ = std::make_unique<Writer>(
      [this](std::vector<AccessEntry>& entries) { return WriteBatchOf(entries); },
      std::move(writer));
}

absl::Status AccessLog::Load() {
  absl::MutexLock lock(&write_mu_);
  rocksdb::ReadOptions read;
  absl::StatusOr<Anchor> anchor = ReadAnchor(db_, family_, read);
  if (!anchor.ok()) return anchor.status();
  head_sequence_ = anchor->first_sequence - 1;
  head_hash_ = anchor->prev_hash;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, family_));
  it->SeekForPrev(RecordKey(~uint64_t{0}));
  uint64_t sequence = 0;
  if (it->Valid() && ParseRecordKey(View(it->key()), &sequence)) {
    absl::StatusOr<DecodedRecord> last = DecodeRecord(sequence, View(it->value()));
    if (!last.ok()) return last.status();
    if (sequence < anchor->first_sequence) {
      return absl::DataLossError(absl::StrCat("access log: record ", sequence,
                                              " lies before the anchor ",
                                              anchor->first_sequence));
    }
    head_sequence_ = sequence;
    head_hash_ = last->hash;
    last_micros_ = ToMicros(FromTimestamp(last->record.time()));
  }
  return FromRocks(it->status(), "reading the access log head");
}

AccessLog::~AccessLog() {
  // Every queued record is written and answered while the state the writer uses is still here.
  if (writer_ != nullptr) writer_->Stop();
}

void AccessLog::Append(AccessEntry entry, Done done) {
  if (read_only_) {
    std::move(done)(absl::FailedPreconditionError("access log is open read-only"));
    return;
  }
  writer_->Submit(std::move(entry), std::move(done));
}

absl::StatusOr<uint64_t> AccessLog::AppendAndWait(AccessEntry entry) {
  absl::Mutex mu;
  bool finished = false;
  absl::StatusOr<uint64_t> result;
  Append(std::move(entry), [&](absl::StatusOr<uint64_t> sequence) {
    absl::MutexLock lock(&mu);
    result = std::move(sequence);
    finished = true;
  });
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(&finished));
  return result;
}

void AccessLog::RetainOnSchedule() {
  absl::MutexLock lock(&write_mu_);
  // A failed delete leaves the records in place (and the log still verifies): retried at the
  // next check.
  DeleteOlderThanLocked(clock_->Now() - options_.retention).IgnoreError();
}

std::vector<absl::StatusOr<uint64_t>> AccessLog::WriteBatchOf(std::vector<AccessEntry>& entries) {
  std::vector<absl::StatusOr<uint64_t>> results;
  results.reserve(entries.size());
  std::vector<AccessEntry*> records;
  records.reserve(entries.size());
  for (AccessEntry& entry : entries) records.push_back(&entry);
  rocksdb::WriteBatch write;
  absl::MutexLock lock(&write_mu_);
  if (write_error_.ok()) {
    const uint64_t first = head_sequence_ + 1;
    absl::Status s = WriteLocked(records, &write, [&] {
      rocksdb::WriteOptions options;
      options.sync = options_.sync;
      return FromRocks(db_->Write(options, &write), "appending access records");
    });
    if (s.ok()) {
      for (uint64_t i = 0; i < entries.size(); ++i) results.emplace_back(first + i);
      return results;
    }
  }
  // A copy of its own for each: the completion thread drops it (store/group_commit.h).
  for (std::size_t i = 0; i < entries.size(); ++i) results.emplace_back(UnsharedCopy(write_error_));
  return results;
}

absl::Status AccessLog::WriteWith(const std::vector<AccessEntry*>& entries,
                                  rocksdb::WriteBatch* batch,
                                  absl::FunctionRef<absl::Status()> write, absl::Status* refused) {
  absl::MutexLock lock(&write_mu_);
  if (!write_error_.ok()) {
    *refused = UnsharedCopy(write_error_);
    return write();
  }
  *refused = absl::OkStatus();
  return WriteLocked(entries, batch, write);
}

// Adds the records to `batch`, runs `write`, and moves the head (or latches its failure).
absl::Status AccessLog::WriteLocked(const std::vector<AccessEntry*>& entries,
                                    rocksdb::WriteBatch* batch,
                                    absl::FunctionRef<absl::Status()> write) {
  uint64_t sequence = head_sequence_;
  Hash hash = head_hash_;
  const int64_t micros = std::max(last_micros_, absl::ToUnixMicros(clock_->Now()));
  for (AccessEntry* entry : entries) {
    ++sequence;
    batch->Put(family_, RecordKey(sequence), EncodeAccessRow(sequence, micros, *entry, &hash));
    batch->Put(family_, TimeKey(micros, sequence), "");
  }
  absl::Status s = write();
  if (!s.ok()) {
    write_error_ = WritesRefusedAfter(Refuser::kAccessLog, s);
    return s;
  }
  head_sequence_ = sequence;
  head_hash_ = hash;
  last_micros_ = micros;
  return absl::OkStatus();
}

absl::Status AccessLog::WriteHealth() const {
  absl::MutexLock lock(&write_mu_);
  return write_error_;
}

absl::Status AccessLog::ResumeAfterNoSpace() {
  absl::MutexLock lock(&write_mu_);
  if (write_error_.ok() || !IsNoSpace(write_error_)) return write_error_;
  // A refused batch must have left nothing: the last stored record is the last one acknowledged.
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), family_));
  it->SeekForPrev(RecordKey(~uint64_t{0}));
  uint64_t sequence = 0;
  bool same = true;
  if (it->Valid() && ParseRecordKey(View(it->key()), &sequence)) {
    absl::StatusOr<DecodedRecord> last = DecodeRecord(sequence, View(it->value()));
    same = last.ok() && sequence == head_sequence_ && last->hash == head_hash_;
  }
  if (absl::Status s = FromRocks(it->status(), "reading the access log head"); !s.ok()) return s;
  if (!same) {
    write_error_ = WritesRefusedAfter(
        Refuser::kAccessLog,
        absl::DataLossError("access log: the stored head moved while appends were refused"));
    return write_error_;
  }
  write_error_ = absl::OkStatus();
  return write_error_;
}

absl::StatusOr<uint64_t> AccessLog::DeleteOlderThan(absl::Time cutoff) {
  if (read_only_) return absl::FailedPreconditionError("access log is open read-only");
  absl::MutexLock lock(&write_mu_);
  return DeleteOlderThanLocked(cutoff);
}

absl::StatusOr<uint64_t> AccessLog::DeleteOlderThanLocked(absl::Time cutoff) {
  if (!write_error_.ok()) return write_error_;
  rocksdb::ReadOptions read;
  absl::StatusOr<Anchor> anchor = ReadAnchor(db_, family_, read);
  if (!anchor.ok()) return anchor.status();
  const std::string cutoff_prefix = TimePrefix(ToMicros(cutoff));
  // The last record before the cutoff: every time key of the cutoff instant sorts after the
  // bare prefix.
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, family_));
  it->SeekForPrev(cutoff_prefix);
  if (!it->status().ok()) return FromRocks(it->status(), "seeking the access log time index");
  if (!it->Valid() || it->key().size() != 17 || it->key()[0] != kTimeTag) return 0;
  uint64_t last = 0;
  keys::DecodeFixed64BE(View(it->key()).substr(9), &last);
  if (last < anchor->first_sequence) return 0;
  std::string raw;
  rocksdb::Status s = db_->Get(read, family_, RecordKey(last), &raw);
  if (!s.ok()) return FromRocks(s, absl::StrCat("reading access log record ", last));
  absl::StatusOr<DecodedRecord> decoded = DecodeRecord(last, raw);
  if (!decoded.ok()) return decoded.status();

  rocksdb::WriteBatch write;
  write.DeleteRange(family_, RecordKey(anchor->first_sequence), RecordKey(last + 1));
  write.DeleteRange(family_, std::string(1, kTimeTag), cutoff_prefix);
  write.Put(family_, kAnchorKey, EncodeAnchor(last + 1, decoded->hash));
  rocksdb::WriteOptions options;
  options.sync = options_.sync;
  if (absl::Status w = FromRocks(db_->Write(options, &write), "deleting expired access records");
      !w.ok()) {
    return w;
  }
  return last + 1 - anchor->first_sequence;
}

absl::StatusOr<std::vector<StoredAccessRecord>> AccessLog::Read(const AccessQuery& query) const {
  rocksdb::ManagedSnapshot snapshot(db_);
  rocksdb::ReadOptions read;
  // A read-only handle (possibly a RocksDB secondary, which refuses snapshots) does not change
  // between reads: it needs none.
  if (!read_only_) read.snapshot = snapshot.snapshot();
  std::vector<StoredAccessRecord> out;
  if (query.from >= query.to) return out;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, family_));
  // The first record at or after `from`, from the time index; records follow in time order.
  it->Seek(TimePrefix(ToMicros(query.from)));
  if (!it->Valid()) {
    if (absl::Status s = FromRocks(it->status(), "reading the access log time index"); !s.ok()) {
      return s;
    }
    return out;
  }
  if (it->key().size() != 17 || it->key()[0] != kTimeTag) return out;
  uint64_t first = 0;
  keys::DecodeFixed64BE(View(it->key()).substr(9), &first);
  const std::string upper = std::string(1, kRecordTag + 1);
  const rocksdb::Slice upper_slice(upper);
  read.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> records(db_->NewIterator(read, family_));
  const int64_t to_micros = ToMicros(query.to);
  for (records->Seek(RecordKey(first)); records->Valid(); records->Next()) {
    uint64_t sequence = 0;
    if (!ParseRecordKey(View(records->key()), &sequence)) {
      return absl::DataLossError("access log: malformed record key");
    }
    absl::StatusOr<DecodedRecord> decoded = DecodeRecord(sequence, View(records->value()));
    if (!decoded.ok()) return decoded.status();
    if (ToMicros(FromTimestamp(decoded->record.time())) >= to_micros) break;
    if (!query.principal.empty() && decoded->record.principal() != query.principal) continue;
    out.push_back(StoredAccessRecord{std::move(decoded->record), decoded->hash});
    if (query.limit != 0 && out.size() >= query.limit) break;
  }
  if (absl::Status s = FromRocks(records->status(), "reading access records"); !s.ok()) return s;
  return out;
}

AccessVerifyReport AccessLog::Verify() const {
  rocksdb::ManagedSnapshot snapshot(db_);
  rocksdb::ReadOptions read;
  // A read-only handle (possibly a RocksDB secondary, which refuses snapshots) does not change
  // between reads: it needs none.
  if (!read_only_) read.snapshot = snapshot.snapshot();
  AccessVerifyReport report;
  auto fail = [&report](uint64_t sequence, std::string problem) {
    report.ok = false;
    report.first_bad_sequence = sequence;
    report.problem = std::move(problem);
    return report;
  };
  absl::StatusOr<Anchor> anchor = ReadAnchor(db_, family_, read);
  if (!anchor.ok()) return fail(1, std::string(anchor.status().message()));
  report.first_sequence = anchor->first_sequence;
  report.head_sequence = anchor->first_sequence - 1;
  report.head_hash = anchor->prev_hash;
  const std::string upper = std::string(1, kRecordTag + 1);
  const rocksdb::Slice upper_slice(upper);
  read.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(read, family_));
  uint64_t expected = anchor->first_sequence;
  int64_t last_micros = std::numeric_limits<int64_t>::min();
  for (it->Seek(std::string(1, kRecordTag)); it->Valid(); it->Next(), ++expected) {
    uint64_t sequence = 0;
    if (!ParseRecordKey(View(it->key()), &sequence)) {
      return fail(expected, "malformed record key");
    }
    if (sequence != expected) {
      return fail(expected, absl::StrCat("sequence gap: found ", sequence, " where ", expected,
                                         " was expected"));
    }
    absl::StatusOr<DecodedRecord> decoded = DecodeRecord(sequence, View(it->value()));
    if (!decoded.ok()) return fail(sequence, std::string(decoded.status().message()));
    if (decoded->prev_hash != report.head_hash) {
      return fail(sequence, "prev_hash does not match the previous record's hash");
    }
    if (ChainHash(decoded->prev_hash, sequence, decoded->body) != decoded->hash) {
      return fail(sequence, "hash does not match the record");
    }
    const int64_t micros = ToMicros(FromTimestamp(decoded->record.time()));
    if (micros < last_micros) return fail(sequence, "time goes backwards");
    last_micros = micros;
    report.head_sequence = sequence;
    report.head_hash = decoded->hash;
    ++report.records_checked;
  }
  if (!it->status().ok()) return fail(expected, it->status().ToString());
  return report;
}

uint64_t AccessLog::HeadSequence() const {
  absl::MutexLock lock(&write_mu_);
  return head_sequence_;
}

Hash AccessLog::HeadHash() const {
  absl::MutexLock lock(&write_mu_);
  return head_hash_;
}

}  // namespace outreach::store
