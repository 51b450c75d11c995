// EditRawDb: opens a store's database directly with RocksDB, every column family of
// store/keys.h, so that a test can damage or rewrite what the store wrote (tampering, corruption,
// old formats), then closes it. The store must not have the directory open. `edit` gets the
// handles in keys::ColumnFamilyNames() order (index them with keys::kEvents, keys::kAccessLog,
// ...). Fails the running test if RocksDB does; call it under ASSERT_NO_FATAL_FAILURE where a
// failure must stop the test.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "rocksdb/db.h"

namespace outreach::testing {

using RawDbEdit =
    std::function<void(rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*>& families)>;

void EditRawDb(const std::string& dir, const RawDbEdit& edit);

}  // namespace outreach::testing
