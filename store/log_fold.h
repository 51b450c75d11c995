// The fold of the whole log into every projection row: the one definition of "projections =
// fold of the log". The rebuild writes the rows EmitRows hands over (store/event_store.cc
// RebuildLocked), VerifyProjections compares them with the stored ones, so the two cannot
// disagree. The rows themselves are each projection's (store/projection.h): the fold here is
// the part they share, every task's state and stream, read once; each projection's own fold
// state (Projection::StartFold) sees the same events in the same pass.
//
// A fold of a million events holds several hundred MiB: everything large is on huge pages
// (store/huge_pages.h) and the rows are kept in flat buffers, sorted once. Not thread-safe (one
// fold per FoldedLog); FoldLog only reads the database.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/arena.h"
#include "outreach/v1/task.pb.h"
#include "rocksdb/db.h"
#include "store/huge_pages.h"
#include "store/keys.h"
#include "store/log_reader.h"
#include "store/projection.h"
#include "store/projections/registry.h"
#include "store/sorted_rows.h"

namespace outreach::store {

// The rebuild's sorts compare a key's first 16 bytes, kept beside it as two KeyPrefix
// numbers (store/sorted_rows.h), before they read the bytes themselves: most comparisons
// never touch the (cold) keys.

// Rows in one buffer, sortable by key: a fold makes millions, one allocation each would
// dominate its time. Both vectors are on huge pages (store/huge_pages.h).
class RowBuffer {
 public:
  void Add(absl::string_view key, absl::string_view value) {
    rows_.push_back(Row{KeyPrefix(key, 0), KeyPrefix(key, 8), bytes_.size(),
                        static_cast<uint32_t>(key.size()), static_cast<uint32_t>(value.size())});
    bytes_.insert(bytes_.end(), key.begin(), key.end());
    bytes_.insert(bytes_.end(), value.begin(), value.end());
  }
  void Reserve(std::size_t rows, std::size_t bytes) {
    rows_.reserve(rows);
    bytes_.reserve(bytes);
  }
  void Sort() {
    // Equal prefixes: the keys agree on their first 16 bytes (a shorter key's missing bytes
    // read as 0, and the full comparison below orders it first), so the rest decides.
    std::sort(rows_.begin(), rows_.end(), [this](const Row& a, const Row& b) {
      if (a.prefix0 != b.prefix0) return a.prefix0 < b.prefix0;
      if (a.prefix1 != b.prefix1) return a.prefix1 < b.prefix1;
      return Key(a) < Key(b);
    });
  }
  std::size_t size() const { return rows_.size(); }
  absl::string_view key(std::size_t i) const { return Key(rows_[i]); }
  absl::string_view value(std::size_t i) const {
    return absl::string_view(bytes_.data() + rows_[i].offset + rows_[i].key_size,
                             rows_[i].value_size);
  }

 private:
  struct Row {
    uint64_t prefix0;  // key bytes 0-7, big-endian, 0-padded
    uint64_t prefix1;  // key bytes 8-15
    std::size_t offset;
    uint32_t key_size;
    uint32_t value_size;
  };
  absl::string_view Key(const Row& row) const {
    return absl::string_view(bytes_.data() + row.offset, row.key_size);
  }
  std::vector<char, HugePageAllocator<char>> bytes_;
  std::vector<Row, HugePageAllocator<Row>> rows_;
};

// The whole log folded in memory: every task's state and stream, and each projection's own fold
// state (its rows, sorted, once FoldLog returns). Task states live in `arena`: hundreds of
// thousands of small messages are allocated fast and freed at once.
// Everything large a fold holds is on huge pages (store/huge_pages.h): the arena's blocks, the
// task map, the per-event and per-contact vectors and the projections' row buffers. Page faults
// were a third of a rebuild before.
struct FoldedLog {
  // A task's events are a chain through `next`, by their ordinal in the log; its contacts a
  // chain through `contacts`.
  static constexpr uint32_t kNoEvent = std::numeric_limits<uint32_t>::max();
  struct Stream {
    // The task without its contacts: those are in `contacts`, already serialized. nullptr for
    // a patient's stream.
    v1::Task* task = nullptr;
    uint32_t first = kNoEvent;
    uint32_t last = kNoEvent;
    uint32_t first_contact = kNoEvent;
    uint32_t last_contact = kNoEvent;
  };
  // One contact as it appears in the task row (the field's tag, its length, its bytes), in
  // `arena`.
  struct ContactBytes {
    const char* data;
    uint32_t size;
    uint32_t next;  // the task's next contact, or kNoEvent
  };
  template <typename T>
  using HugeVector = std::vector<T, HugePageAllocator<T>>;
  // Blocks of whole huge pages: the default (at most 8 KiB) would be a malloc per few contacts.
  static google::protobuf::ArenaOptions ArenaBlocks() {
    google::protobuf::ArenaOptions options;
    options.start_block_size = kHugePageBytes;
    options.max_block_size = 4 * kHugePageBytes;
    options.block_alloc = AllocateHuge;
    options.block_dealloc = FreeHuge;
    return options;
  }
  google::protobuf::Arena arena{ArenaBlocks()};
  absl::flat_hash_map<std::string, Stream, absl::Hash<std::string>, std::equal_to<std::string>,
                      HugePageAllocator<std::pair<const std::string, Stream>>>
      streams;
  HugeVector<uint64_t> positions;  // by ordinal
  HugeVector<uint32_t> next;       // by ordinal: the task's next event, or kNoEvent
  HugeVector<ContactBytes> contacts;
  // Every stream in id order (all_streams), and every task's (tasks: a patient's stream has no
  // task state), with its stream: the rows are written from these, without a second lookup in
  // `streams`.
  struct TaskRef {
    uint64_t prefix0;  // KeyPrefix(*id, 0)
    uint64_t prefix1;  // KeyPrefix(*id, 8)
    const std::string* id;
    const Stream* stream;
  };
  HugeVector<TaskRef> all_streams;
  HugeVector<TaskRef> tasks;
  uint64_t events = 0;
  // The projections folded (set before FoldLog to fold another set, e.g. in a test), and the
  // fold state of each (by index; nullptr where its StartFold returned nullptr).
  ProjectionSet projections = RegisteredProjections();
  std::vector<std::unique_ptr<ProjectionFold>> own;
};

// Folds the whole log under `read` into `*out` for `out->projections`, calling `on_event` with
// the number of events folded so far after each one.
// `expected_events` is a size hint (the published head: readers may fold while the writer writes).
absl::Status FoldLog(const LogReader& log, const rocksdb::ReadOptions& read,
                     uint64_t expected_events, FoldedLog* out,
                     absl::FunctionRef<void(uint64_t)> on_event);

// Hands every projection row of `folded` to `emit`, projection by projection in
// `folded.projections` order (family by family in FamiliesOf(folded.projections) order), each
// family's rows in key order. The one definition of "projections = fold of the log": the
// rebuild writes these rows, VerifyProjections compares them with the stored ones.
absl::Status EmitRows(const FoldedLog& folded, RowSink emit);

}  // namespace outreach::store
