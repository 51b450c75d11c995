// The rows one writer batch puts and deletes, handed to RocksDB in key order.
//
// A RocksDB memtable insert does not search its skip list from the top when it can help it: it
// starts from where the previous insert into the same memtable ended (the "splice"), and climbs
// only as far as it must. Rows in submission order land all over the worklist and task indexes,
// so every insert is a full search through cold memory — the writer's largest cost. Sorted per
// column family, each insert starts next to the last one.
//
// A key written more than once in a batch is written once, with its last operation: the batch
// is applied atomically, so the earlier ones are never visible.
//
// Keys and values are copied into one buffer, so that adding a row does not allocate once the
// buffer has grown to a batch's size; Clear keeps the capacity for the next batch.
// Not thread-safe: the writer thread's own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"

namespace outreach::store {

// Bytes `from` to `from + 7` of `key` as a big-endian number, missing bytes read as 0: keys
// compare as their prefixes do, as far as these bytes go. Sorts keep it beside each key and
// compare it first, so that most comparisons never read the (cold) key bytes.
uint64_t KeyPrefix(absl::string_view key, std::size_t from = 0);

class SortedRows {
 public:
  // `family` indexes the handles AppendTo is given (a keys::Cf).
  void Put(int family, absl::string_view key, absl::string_view value);
  void Delete(int family, absl::string_view key);

  std::size_t size() const { return rows_.size(); }
  bool empty() const { return rows_.empty(); }

  // The last operation on (family, key) so far: nullopt if none, a null view for a delete,
  // else the value (valid until the next change). Linear in the rows: for projections that
  // read their own rows, whose batches hold few.
  std::optional<std::optional<absl::string_view>> Find(int family, absl::string_view key) const;

  // Forgets the rows added after the first `size` (a command that failed half-way). Not after
  // AppendTo, which reorders them.
  void Truncate(std::size_t size);

  // Appends the last operation on each distinct (family, key) to `batch`, ordered by family,
  // then key. `handles[family]` is the column family of each family number used.
  void AppendTo(const std::vector<rocksdb::ColumnFamilyHandle*>& handles,
                rocksdb::WriteBatch* batch);

  // Forgets every row; keeps the memory.
  void Clear();

 private:
  struct Row {
    uint64_t prefix;     // the key's first 8 bytes, big-endian, 0-padded: most comparisons end here
    uint32_t offset;     // into bytes_: key, then value
    uint32_t key_size;
    uint32_t value_size;
    uint32_t sequence;   // order of addition: equal keys keep it, the last one wins
    uint8_t family;
    bool is_delete;
  };

  void Add(int family, absl::string_view key, absl::string_view value, bool is_delete);
  absl::string_view Key(const Row& row) const {
    return absl::string_view(bytes_).substr(row.offset, row.key_size);
  }
  absl::string_view Value(const Row& row) const {
    return absl::string_view(bytes_).substr(row.offset + row.key_size, row.value_size);
  }

  std::string bytes_;
  std::vector<Row> rows_;
};

}  // namespace outreach::store
