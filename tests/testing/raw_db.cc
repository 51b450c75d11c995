#include "tests/testing/raw_db.h"

#include <memory>

#include "gtest/gtest.h"
#include "store/keys.h"

namespace outreach::testing {

void EditRawDb(const std::string& dir, const RawDbEdit& edit) {
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  for (const std::string& name : store::keys::ColumnFamilyNames()) {
    families.emplace_back(name, rocksdb::ColumnFamilyOptions());
  }
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  const rocksdb::Status opened =
      rocksdb::DB::Open(rocksdb::DBOptions(), dir, families, &handles, &raw);
  ASSERT_TRUE(opened.ok()) << dir << ": " << opened.ToString();
  std::unique_ptr<rocksdb::DB> db(raw);
  edit(db.get(), handles);
  for (rocksdb::ColumnFamilyHandle* handle : handles) {
    EXPECT_TRUE(db->DestroyColumnFamilyHandle(handle).ok());
  }
  EXPECT_TRUE(db->Close().ok());
}

}  // namespace outreach::testing
