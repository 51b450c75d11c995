// StoreFixture: an EventStore on a temporary directory with a FakeClock, for the store's tests,
// with command builders. Each test gets a fresh directory (and may make more); the raw database
// can be edited between opens to simulate tampering or an older format; the writer runs through
// a WriterGate (tests/testing/writer_gate.h), so that a test can make several commands one batch.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "store/event_store.h"
#include "store/keys.h"
#include "tests/testing/raw_db.h"
#include "tests/testing/temp_dir.h"
#include "tests/testing/writer_gate.h"

namespace outreach::store::testing {

inline const absl::Time kStart =
    absl::FromCivil(absl::CivilSecond(2025, 3, 10, 9, 0, 0), absl::UTCTimeZone());

inline domain::Command Create(const std::string& task_id,
                              const std::string& actor = "coordinator-1",
                              v1::TaskKind kind = v1::MANUAL,
                              std::optional<absl::Time> expires_at = std::nullopt,
                              const std::string& request_id = "") {
  domain::CreateTaskCommand c;
  c.task_id = task_id;
  c.patient_id = "p1";
  c.kind = kind;
  c.title = "Book annual wellness visit";
  c.expires_at = expires_at;
  c.meta = {actor, request_id};
  return c;
}

inline domain::Command Contact(const std::string& task_id, v1::ContactOutcome outcome,
                               const std::string& follow_up_date, bool close_task = false,
                               const std::string& request_id = "") {
  domain::LogContactCommand c;
  c.task_id = task_id;
  c.outcome = outcome;
  c.notes = absl::StrCat("called: ", v1::ContactOutcome_Name(outcome));
  c.follow_up_date = close_task ? "" : follow_up_date;
  c.close_task = close_task;
  c.meta = {"coordinator-1", request_id};
  return c;
}

class StoreFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir();
    ASSERT_TRUE(Reopen().ok());
  }

  void TearDown() override {
    writer_gate_.Release();  // a test that failed while holding the writer must not hang here
    store_.reset();
  }

  // A fresh directory, removed after the test.
  std::string MakeTempDir() {
    temp_dirs_.emplace_back("outreach_store_test_");
    return temp_dirs_.back().path();
  }

  // Fast (no fsync: durability is RocksDB's WAL contract, tested in fault_test.cc), small, on
  // the fake clock, through the writer gate.
  StoreOptions Options(const SchemaRegistry* schemas = nullptr) {
    StoreOptions options;
    options.clock = &clock_;
    options.sync_writes = false;
    options.block_cache_bytes = 1 << 20;
    options.schemas = schemas;
    options.before_batch = writer_gate_.Hook();
    return options;
  }

  absl::Status Reopen(const SchemaRegistry* schemas = nullptr) {
    store_.reset();
    absl::StatusOr<std::unique_ptr<EventStore>> opened =
        EventStore::Open(dir_, Options(schemas));
    if (!opened.ok()) return opened.status();
    store_ = *std::move(opened);
    return absl::OkStatus();
  }

  absl::StatusOr<CommandResult> Run(domain::Command command, const std::string& fingerprint = "") {
    return store_->Execute(std::move(command), fingerprint);
  }

  // Runs the command, failing the test if it fails.
  CommandResult Must(domain::Command command, const std::string& fingerprint = "") {
    absl::StatusOr<CommandResult> result = Run(std::move(command), fingerprint);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *std::move(result) : CommandResult{};
  }

  std::vector<v1::EventRecord> Events(uint64_t from = 0, const std::string& task_id = "",
                                      uint64_t limit = 0) {
    absl::StatusOr<std::vector<v1::EventRecord>> events =
        store_->ReadEvents(from, task_id, limit);
    EXPECT_TRUE(events.ok()) << events.status();
    return events.ok() ? *std::move(events) : std::vector<v1::EventRecord>{};
  }

  // Closes the store and hands the raw database (every column family) to `edit`.
  void EditRawDb(const ::outreach::testing::RawDbEdit& edit) {
    store_.reset();
    ::outreach::testing::EditRawDb(dir_, edit);
  }

  std::vector<::outreach::testing::TempDir> temp_dirs_;
  std::string dir_;
  FakeClock clock_{kStart};
  ::outreach::testing::WriterGate writer_gate_;  // outlives store_
  std::unique_ptr<EventStore> store_;
};

}  // namespace outreach::store::testing
