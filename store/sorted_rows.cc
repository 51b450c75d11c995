#include "store/sorted_rows.h"

#include <algorithm>

#include "store/rocks.h"

namespace outreach::store {

uint64_t KeyPrefix(absl::string_view key, std::size_t from) {
  uint64_t out = 0;
  for (std::size_t i = from; i < from + 8; ++i) {
    out = (out << 8) | (i < key.size() ? static_cast<uint8_t>(key[i]) : 0);
  }
  return out;
}

void SortedRows::Put(int family, absl::string_view key, absl::string_view value) {
  Add(family, key, value, /*is_delete=*/false);
}

void SortedRows::Delete(int family, absl::string_view key) {
  Add(family, key, absl::string_view(), /*is_delete=*/true);
}

void SortedRows::Add(int family, absl::string_view key, absl::string_view value,
                     bool is_delete) {
  rows_.push_back(Row{KeyPrefix(key), static_cast<uint32_t>(bytes_.size()),
                      static_cast<uint32_t>(key.size()), static_cast<uint32_t>(value.size()),
                      static_cast<uint32_t>(rows_.size()), static_cast<uint8_t>(family),
                      is_delete});
  bytes_.append(key.data(), key.size());
  bytes_.append(value.data(), value.size());
}

void SortedRows::AppendTo(const std::vector<rocksdb::ColumnFamilyHandle*>& handles,
                          rocksdb::WriteBatch* batch) {
  // Equal prefixes: the keys agree on their first 8 bytes (a shorter key's missing bytes read
  // as 0, and the full comparison orders it first), so the whole keys decide, then the order
  // of addition.
  std::sort(rows_.begin(), rows_.end(), [this](const Row& a, const Row& b) {
    if (a.family != b.family) return a.family < b.family;
    if (a.prefix != b.prefix) return a.prefix < b.prefix;
    const int order = Key(a).compare(Key(b));
    if (order != 0) return order < 0;
    return a.sequence < b.sequence;
  });
  for (std::size_t i = 0; i < rows_.size(); ++i) {
    const Row& row = rows_[i];
    if (i + 1 < rows_.size() && rows_[i + 1].family == row.family &&
        Key(rows_[i + 1]) == Key(row)) {
      continue;  // a later operation on the same key replaces this one
    }
    rocksdb::ColumnFamilyHandle* handle = handles[row.family];
    if (row.is_delete) {
      batch->Delete(handle, ToSlice(Key(row)));
    } else {
      batch->Put(handle, ToSlice(Key(row)), ToSlice(Value(row)));
    }
  }
}

std::optional<std::optional<absl::string_view>> SortedRows::Find(int family,
                                                                absl::string_view key) const {
  for (std::size_t i = rows_.size(); i-- > 0;) {
    const Row& row = rows_[i];
    if (row.family != family || Key(row) != key) continue;
    if (row.is_delete) return std::optional<absl::string_view>();
    return std::optional<absl::string_view>(Value(row));
  }
  return std::nullopt;
}

void SortedRows::Truncate(std::size_t size) {
  if (size >= rows_.size()) return;
  bytes_.resize(rows_[size].offset);
  rows_.resize(size);
}

void SortedRows::Clear() {
  bytes_.clear();
  rows_.clear();
}

}  // namespace outreach::store
