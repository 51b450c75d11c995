// store/sorted_rows.h: the writer hands a batch's rows to RocksDB per column family in key
// order, each key once with its last operation. Checked on a real database's column families
// by reading the WriteBatch back in order, and by what the database holds after the write.
#include "store/sorted_rows.h"

#include <filesystem>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"

namespace outreach::store {
namespace {

// One operation as the WriteBatch holds it.
struct Op {
  uint32_t family;
  std::string kind;  // "put" or "delete"
  std::string key;
  std::string value;
  bool operator==(const Op& other) const {
    return std::tie(family, kind, key, value) ==
           std::tie(other.family, other.kind, other.key, other.value);
  }
};

std::ostream& operator<<(std::ostream& out, const Op& op) {
  return out << "{" << op.family << " " << op.kind << " " << op.key << "=" << op.value << "}";
}

class Recorder : public rocksdb::WriteBatch::Handler {
 public:
  rocksdb::Status PutCF(uint32_t family, const rocksdb::Slice& key,
                        const rocksdb::Slice& value) override {
    ops.push_back(Op{family, "put", key.ToString(), value.ToString()});
    return rocksdb::Status::OK();
  }
  rocksdb::Status DeleteCF(uint32_t family, const rocksdb::Slice& key) override {
    ops.push_back(Op{family, "delete", key.ToString(), ""});
    return rocksdb::Status::OK();
  }
  std::vector<Op> ops;
};

class SortedRowsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/outreach-sorted-rows-test.XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    rocksdb::DBOptions options;
    options.create_if_missing = true;
    options.create_missing_column_families = true;
    std::vector<rocksdb::ColumnFamilyDescriptor> families = {
        {rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions()},
        {"one", rocksdb::ColumnFamilyOptions()},
        {"two", rocksdb::ColumnFamilyOptions()}};
    rocksdb::DB* db = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, dir_, families, &handles_, &db).ok());
    db_.reset(db);
  }
  void TearDown() override {
    for (rocksdb::ColumnFamilyHandle* handle : handles_) db_->DestroyColumnFamilyHandle(handle);
    db_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::vector<Op> Written(SortedRows& rows) {
    rocksdb::WriteBatch batch;
    rows.AppendTo(handles_, &batch);
    Recorder recorder;
    EXPECT_TRUE(batch.Iterate(&recorder).ok());
    return recorder.ops;
  }

  std::string dir_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
};

TEST_F(SortedRowsTest, RowsGoOutByFamilyThenKeyWhateverOrderTheyCameIn) {
  SortedRows rows;
  rows.Put(2, "b", "2b");
  rows.Put(1, "zz", "1zz");
  rows.Delete(1, "a");
  rows.Put(2, "a", "2a");
  rows.Put(1, "abcdefghij", "long");  // shares the first 8 bytes with the next key
  rows.Put(1, "abcdefghi", "shorter");
  EXPECT_EQ(Written(rows), (std::vector<Op>{{1, "delete", "a", ""},
                                            {1, "put", "abcdefghi", "shorter"},
                                            {1, "put", "abcdefghij", "long"},
                                            {1, "put", "zz", "1zz"},
                                            {2, "put", "a", "2a"},
                                            {2, "put", "b", "2b"}}));
}

TEST_F(SortedRowsTest, AKeyWrittenTwiceInABatchIsWrittenOnceWithItsLastOperation) {
  SortedRows rows;
  rows.Put(1, "k", "first");
  rows.Delete(1, "k");
  rows.Put(1, "k", "last");
  rows.Put(1, "gone", "x");
  rows.Delete(1, "gone");
  rows.Put(2, "k", "other family");  // the same key in another family is another row
  EXPECT_EQ(Written(rows), (std::vector<Op>{{1, "delete", "gone", ""},
                                            {1, "put", "k", "last"},
                                            {2, "put", "k", "other family"}}));
}

TEST_F(SortedRowsTest, TheDatabaseHoldsWhatTheRowsSaidInTheirOrder) {
  ASSERT_TRUE(db_->Put(rocksdb::WriteOptions(), handles_[1], "gone", "before").ok());
  SortedRows rows;
  rows.Put(1, "kept", "v1");
  rows.Delete(1, "gone");
  rows.Put(1, "kept", "v2");
  rocksdb::WriteBatch batch;
  rows.AppendTo(handles_, &batch);
  ASSERT_TRUE(db_->Write(rocksdb::WriteOptions(), &batch).ok());
  std::string value;
  EXPECT_TRUE(db_->Get(rocksdb::ReadOptions(), handles_[1], "gone", &value).IsNotFound());
  ASSERT_TRUE(db_->Get(rocksdb::ReadOptions(), handles_[1], "kept", &value).ok());
  EXPECT_EQ(value, "v2");
}

TEST(KeyPrefixTest, PrefixesOrderAsTheirKeysDoAsFarAsTheyReach) {
  EXPECT_LT(KeyPrefix("abc"), KeyPrefix("abd"));
  EXPECT_LT(KeyPrefix("ab"), KeyPrefix(absl::string_view("ab\x01", 3)));  // missing bytes are 0
  EXPECT_EQ(KeyPrefix("abcdefghij"), KeyPrefix("abcdefghzz"));  // only bytes 0-7 count
  EXPECT_EQ(KeyPrefix("abcdefghXY", 8), (uint64_t{'X'} << 56) | (uint64_t{'Y'} << 48));
  EXPECT_LT(KeyPrefix("abcdefghXY", 8), KeyPrefix("abcdefghXZ", 8));
}

TEST_F(SortedRowsTest, ClearForgetsEveryRow) {
  SortedRows rows;
  rows.Put(1, "a", "x");
  rows.Clear();
  EXPECT_TRUE(rows.empty());
  rows.Put(2, "b", "y");
  EXPECT_EQ(Written(rows), (std::vector<Op>{{2, "put", "b", "y"}}));
}

}  // namespace
}  // namespace outreach::store
