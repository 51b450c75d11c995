// outreachctl end to end: runs the built binary on real data directories written by the store,
// offline and beside a live (open for writing) store, and checks exit codes and output.
#include <sys/stat.h>
#include <fcntl.h>
#include <spawn.h>
#include <unistd.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "store/erasure_list.h"
#include "store/event_store.h"
#include "store/privacy.h"
#include "store/keys.h"
#include "tests/testing/raw_db.h"
#include "tests/testing/temp_dir.h"

extern char** environ;

namespace outreach::ctl {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const absl::Time kStart =
    absl::FromCivil(absl::CivilSecond(2025, 3, 10, 9, 0, 0), absl::UTCTimeZone());

struct Outcome {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// "key: value" from outreachctl's stdout.
std::string Field(const std::string& out, const std::string& key) {
  for (absl::string_view line : absl::StrSplit(out, '\n')) {
    const std::string prefix = key + ": ";
    if (absl::StartsWith(line, prefix)) return std::string(line.substr(prefix.size()));
  }
  return "";
}

class OutreachctlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = temp_.path();
    db_ = root_ + "/db";
  }

  void TearDown() override { store_.reset(); }

  // Runs outreachctl with `args`; stdout and stderr go to files, read back after it exits.
  Outcome Ctl(const std::vector<std::string>& args) {
    const std::string out_path = root_ + "/ctl.stdout";
    const std::string err_path = root_ + "/ctl.stderr";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    std::vector<std::string> all = {OUTREACHCTL_PATH};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& arg : all) argv.push_back(arg.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    const int spawned = posix_spawn(&pid, OUTREACHCTL_PATH, &actions, nullptr, argv.data(),
                                    environ);
    posix_spawn_file_actions_destroy(&actions);
    Outcome outcome;
    EXPECT_EQ(spawned, 0) << "cannot run " << OUTREACHCTL_PATH;
    if (spawned != 0) return outcome;
    int status = 0;
    EXPECT_EQ(waitpid(pid, &status, 0), pid);
    outcome.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    outcome.out = ReadFile(out_path);
    outcome.err = ReadFile(err_path);
    return outcome;
  }

  // Runs outreachctl with stderr on a pseudo-terminal (stdout to a file); returns what it drew
  // there.
  std::string CtlOnTerminal(const std::vector<std::string>& args) {
    const int master = posix_openpt(O_RDWR | O_NOCTTY);
    EXPECT_GE(master, 0);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0) return "";
    const std::string terminal = ptsname(master);
    const std::string out_path = root_ + "/ctl.stdout";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_addopen(&actions, 2, terminal.c_str(), O_RDWR | O_NOCTTY, 0);
    std::vector<std::string> all = {OUTREACHCTL_PATH};
    all.insert(all.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& arg : all) argv.push_back(arg.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    EXPECT_EQ(posix_spawn(&pid, OUTREACHCTL_PATH, &actions, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&actions);
    int status = 0;
    EXPECT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
    std::string drawn;
    fcntl(master, F_SETFL, O_NONBLOCK);
    char buffer[4096];
    ssize_t n = 0;
    while ((n = read(master, buffer, sizeof(buffer))) > 0) drawn.append(buffer, n);
    close(master);
    return drawn;
  }

  store::StoreOptions Options() {
    store::StoreOptions options;
    options.clock = &clock_;
    options.block_cache_bytes = 1 << 20;
    return options;
  }

  void OpenStore(const std::string& dir) {
    absl::StatusOr<std::unique_ptr<store::EventStore>> opened =
        store::EventStore::Open(dir, Options());
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = *std::move(opened);
  }

  void Run(domain::Command command) {
    absl::StatusOr<store::CommandResult> result = store_->Execute(std::move(command), "");
    ASSERT_TRUE(result.ok()) << result.status();
  }

  // Writes `tasks` tasks to `db_`, each created, contacted, and every third closed, and leaves
  // the store open. Returns the head hash (hex).
  std::string MakeData(int tasks) {
    OpenStore(db_);
    for (int i = 0; i < tasks; ++i) {
      domain::CreateTaskCommand create;
      create.task_id = absl::StrCat("t", i);
      create.patient_id = absl::StrCat("p", i % 4);
      create.kind = v1::MANUAL;
      create.title = "Book a visit";
      create.meta = {"coordinator-1", ""};
      Run(create);
      clock_.Advance(absl::Minutes(5));
      domain::LogContactCommand contact;
      contact.task_id = create.task_id;
      contact.outcome = i % 3 == 0 ? v1::SCHEDULED : v1::LEFT_MESSAGE;
      contact.notes = "called";
      contact.close_task = i % 3 == 0;
      contact.follow_up_date = contact.close_task ? "" : "2025-03-20";
      contact.meta = {"coordinator-1", ""};
      Run(contact);
    }
    return absl::BytesToHexString(store_->VerifyLog().head_hash);
  }

  // Closes the store and hands the raw database (every column family) to `edit`.
  void EditRawDb(const testing::RawDbEdit& edit) {
    store_.reset();
    testing::EditRawDb(db_, edit);
  }

  std::vector<v1::EventRecord> ParseJsonLines(const std::string& out) {
    std::vector<v1::EventRecord> records;
    for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
      v1::EventRecord record;
      const auto parsed = google::protobuf::util::JsonStringToMessage(std::string(line), &record);
      EXPECT_TRUE(parsed.ok()) << parsed.ToString() << " in: " << line;
      records.push_back(record);
    }
    return records;
  }

  testing::TempDir temp_{"outreachctl_test_"};
  std::string root_;
  std::string db_;
  store::FakeClock clock_{kStart};
  std::unique_ptr<store::EventStore> store_;
};

// ---- verify ----

TEST_F(OutreachctlTest, VerifyOfAGoodDatabaseExitsZeroAndPrintsTheHead) {
  const std::string head_hash = MakeData(10);
  store_.reset();
  const Outcome o = Ctl({"verify", "--db", db_});
  EXPECT_EQ(o.exit_code, 0) << o.out << o.err;
  EXPECT_EQ(Field(o.out, "head_position"), "24");  // 10 created, 10 contacts, 4 closes
  EXPECT_EQ(Field(o.out, "head_hash"), head_hash);
  EXPECT_EQ(Field(o.out, "log"), "ok");
  EXPECT_EQ(Field(o.out, "projections"), "ok");
}

TEST_F(OutreachctlTest, VerifyChecksTheAccessLogChainAlsoAfterRetentionTrimmedIt) {
  MakeData(3);
  store::AccessLog* access = store_->access_log();
  ASSERT_NE(access, nullptr);
  for (int i = 0; i < 5; ++i) {
    store::AccessEntry entry;
    entry.principal = "auditor-1";
    entry.rpc = "/outreach.v1.TaskService/GetTask";
    entry.task_ids = {absl::StrCat("t", i % 3)};
    entry.count = 1;
    ASSERT_TRUE(access->AppendAndWait(entry).ok());
    clock_.Advance(absl::Hours(1));
  }
  // Records 1-3 are older than the cutoff: deleted, the anchor moves past them.
  absl::StatusOr<uint64_t> deleted = access->DeleteOlderThan(clock_.Now() - absl::Hours(2));
  ASSERT_TRUE(deleted.ok()) << deleted.status();
  EXPECT_EQ(*deleted, 3u);
  store_.reset();
  Outcome verify = Ctl({"verify", "--db", db_});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_EQ(Field(verify.out, "access_log"), "ok");
  EXPECT_EQ(Field(verify.out, "access_log_first_sequence"), "4");
  EXPECT_EQ(Field(verify.out, "access_log_head_sequence"), "5");
}

TEST_F(OutreachctlTest, VerifyAgainstAKeptHashAtAPosition) {
  MakeData(5);
  const std::string hash_at_4 = absl::BytesToHexString(store_->ReadEvents(4, "", 1)->at(0).hash());
  store_.reset();
  const Outcome ok = Ctl({"verify", "--db", db_, "--to", "4", "--expect-hash", hash_at_4});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  EXPECT_EQ(Field(ok.out, "head_position"), "4");
  EXPECT_EQ(Field(ok.out, "head_hash"), hash_at_4);

  std::string other = hash_at_4;
  other[0] = other[0] == '0' ? '1' : '0';
  const Outcome bad = Ctl({"verify", "--db", db_, "--to=4", "--expect-hash=" + other});
  EXPECT_EQ(bad.exit_code, 1) << bad.out << bad.err;
  EXPECT_THAT(bad.out, HasSubstr("log: FAILED at position 4"));

  const Outcome beyond = Ctl({"verify", "--db", db_, "--to", "99"});
  EXPECT_EQ(beyond.exit_code, 1) << beyond.out << beyond.err;
  EXPECT_THAT(beyond.out, HasSubstr("beyond the head position"));
}

TEST_F(OutreachctlTest, VerifyOfACorruptedEventExitsOneNamingItsPosition) {
  MakeData(5);
  EditRawDb([](rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*>& cfs) {
    std::string value;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), cfs[store::keys::kEvents],
                        store::keys::EventKey(3), &value)
                    .ok());
    value[value.size() - 1] ^= 0x01;
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), cfs[store::keys::kEvents],
                        store::keys::EventKey(3), value)
                    .ok());
  });
  const Outcome o = Ctl({"verify", "--db", db_});
  EXPECT_EQ(o.exit_code, 1) << o.out << o.err;
  EXPECT_THAT(o.out, HasSubstr("log: FAILED at position 3"));
  EXPECT_THAT(o.err, HasSubstr("position 3"));
}

TEST_F(OutreachctlTest, VerifyOfATruncatedTailExitsOneNamingTheMissingPosition) {
  MakeData(5);
  EditRawDb([](rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*>& cfs) {
    ASSERT_TRUE(db->Delete(rocksdb::WriteOptions(), cfs[store::keys::kEvents],
                           store::keys::EventKey(12))
                    .ok());
  });
  const Outcome o = Ctl({"verify", "--db", db_});
  EXPECT_EQ(o.exit_code, 1) << o.out << o.err;
  EXPECT_THAT(o.out, HasSubstr("log: FAILED at position 12"));
  EXPECT_EQ(Field(o.out, "head_position"), "11");
}

TEST_F(OutreachctlTest, VerifyOfTamperedProjectionsExitsOneAndRebuildRepairsThem) {
  MakeData(5);
  EditRawDb([](rocksdb::DB* db, std::vector<rocksdb::ColumnFamilyHandle*>& cfs) {
    ASSERT_TRUE(
        db->Delete(rocksdb::WriteOptions(), cfs[store::keys::kTasks], "t2").ok());
  });
  const Outcome before = Ctl({"verify", "--db", db_});
  EXPECT_EQ(before.exit_code, 1) << before.out << before.err;
  EXPECT_EQ(Field(before.out, "log"), "ok");
  EXPECT_THAT(before.out, HasSubstr("projections: FAILED"));

  const Outcome rebuild = Ctl({"rebuild", "--db", db_});
  EXPECT_EQ(rebuild.exit_code, 0) << rebuild.out << rebuild.err;
  // Not on a terminal: no progress, one summary line.
  EXPECT_THAT(rebuild.err, ::testing::MatchesRegex(
                               "outreachctl rebuild: done: 12 events in [^ ]+ \\([0-9]+ "
                               "events/s\\)\n"));

  const Outcome after = Ctl({"verify", "--db", db_});
  EXPECT_EQ(after.exit_code, 0) << after.out << after.err;
}

TEST_F(OutreachctlTest, OnATerminalRebuildVerifyAndExportDrawProgressWithRateAndEta) {
  MakeData(5);
  store_.reset();  // rebuild needs the directory to itself
  for (const std::string command : {"rebuild", "verify", "export"}) {
    const std::string drawn = CtlOnTerminal({command, "--db", db_});
    // The progress line, drawn in place, with the count, percent, rate and ETA; then cleared
    // and the summary.
    EXPECT_THAT(drawn, HasSubstr(absl::StrCat("\r", command, ": 12/12 events (100.0%), ")))
        << drawn;
    EXPECT_THAT(drawn, ::testing::ContainsRegex("[0-9]+ events/s, ETA 0s")) << drawn;
    EXPECT_THAT(drawn, HasSubstr("\x1b[K")) << drawn;
    EXPECT_THAT(drawn, HasSubstr(absl::StrCat("outreachctl ", command, ": done: 12 events in ")))
        << drawn;
  }
}

TEST_F(OutreachctlTest, VerifyOfAMissingDatabaseExitsOneSayingSo) {
  const Outcome o = Ctl({"verify", "--db", root_ + "/absent"});
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_THAT(o.err, HasSubstr("no such directory"));
  EXPECT_FALSE(std::filesystem::exists(root_ + "/absent"));
}

// ---- beside a running writer ----

TEST_F(OutreachctlTest, VerifyAndExportWorkBesideALiveStore) {
  const std::string head_hash = MakeData(4);  // the store stays open, holding the LOCK
  const Outcome verify = Ctl({"verify", "--db", db_});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_EQ(Field(verify.out, "head_hash"), head_hash);
  const Outcome exported = Ctl({"export", "--db", db_});
  EXPECT_EQ(exported.exit_code, 0) << exported.err;
  EXPECT_EQ(ParseJsonLines(exported.out).size(), store_->HeadPosition());
  // The writer is unaffected.
  domain::CreateTaskCommand create;
  create.task_id = "after";
  create.patient_id = "p";
  create.kind = v1::MANUAL;
  create.meta = {"a", ""};
  Run(create);
  EXPECT_EQ(Field(Ctl({"verify", "--db", db_}).out, "head_position"), "11");
}

TEST_F(OutreachctlTest, RebuildAndBackupOfALiveDirectoryExitOneSayingItIsInUse) {
  MakeData(2);
  const Outcome rebuild = Ctl({"rebuild", "--db", db_});
  EXPECT_EQ(rebuild.exit_code, 1);
  EXPECT_THAT(rebuild.err, HasSubstr("is outreachd running"));
  const Outcome backup = Ctl({"backup", "--db", db_, "--to", root_ + "/backups"});
  EXPECT_EQ(backup.exit_code, 1);
  EXPECT_THAT(backup.err, HasSubstr("is outreachd running"));
}

// ---- export ----

TEST_F(OutreachctlTest, ExportPrintsOneParsableJsonLinePerEvent) {
  MakeData(3);
  const std::vector<v1::EventRecord> events = *store_->ReadEvents(0, "", 0);
  store_.reset();
  const Outcome all = Ctl({"export", "--db", db_});
  EXPECT_EQ(all.exit_code, 0) << all.err;
  const std::vector<v1::EventRecord> parsed = ParseJsonLines(all.out);
  ASSERT_EQ(parsed.size(), events.size());
  for (std::size_t i = 0; i < parsed.size(); ++i) {
    EXPECT_EQ(parsed[i].SerializeAsString(), events[i].SerializeAsString()) << i;
  }
  EXPECT_THAT(all.out, HasSubstr("\"outcome\":\"SCHEDULED\""));

  const Outcome from = Ctl({"export", "--db", db_, "--from", "5"});
  EXPECT_EQ(from.exit_code, 0);
  std::vector<v1::EventRecord> tail = ParseJsonLines(from.out);
  ASSERT_EQ(tail.size(), events.size() - 4);
  EXPECT_EQ(tail[0].position(), 5u);

  const Outcome task = Ctl({"export", "--db", db_, "--task", "t1"});
  EXPECT_EQ(task.exit_code, 0);
  const std::vector<v1::EventRecord> stream = ParseJsonLines(task.out);
  ASSERT_EQ(stream.size(), 2u);
  for (const v1::EventRecord& e : stream) EXPECT_EQ(e.task_id(), "t1");
}

// ---- backup and restore ----

TEST_F(OutreachctlTest, BackupAndRestoreRoundTripToAVerifiedCopy) {
  const std::string head_hash = MakeData(6);
  store_.reset();
  const std::string backups = root_ + "/backups";
  const Outcome backup = Ctl({"backup", "--db", db_, "--to", backups});
  EXPECT_EQ(backup.exit_code, 0) << backup.out << backup.err;
  EXPECT_EQ(Field(backup.out, "head_hash"), head_hash);

  const std::string copy = root_ + "/copy";
  const Outcome restore = Ctl({"restore", "--from", backups, "--db", copy});
  EXPECT_EQ(restore.exit_code, 0) << restore.out << restore.err;
  EXPECT_EQ(Field(restore.out, "head_hash"), head_hash);

  const Outcome verify = Ctl({"verify", "--db", copy});
  EXPECT_EQ(verify.exit_code, 0) << verify.out << verify.err;
  EXPECT_EQ(Field(verify.out, "head_hash"), head_hash);
  EXPECT_EQ(Ctl({"export", "--db", copy}).out, Ctl({"export", "--db", db_}).out);
  // Whatever the caller's umask, the copy and the backups are private, as outreachd's own
  // files are (outreachd refuses a --db directory others can read).
  for (const std::string& dir : {copy, backups}) {
    struct stat info {};
    ASSERT_EQ(stat(dir.c_str(), &info), 0) << dir;
    EXPECT_EQ(info.st_mode & 077, 0u) << dir;
  }
}

// README "Privacy": an encrypted database's backup restored after an erasure gets the erasure
// again from the erasure list; export needs the key; the key can be rotated offline.
TEST_F(OutreachctlTest, RestoreReappliesListedErasuresAndRotateMasterKeyKeepsTheLog) {
  const std::string key_file = root_ + "/master.key";
  const std::string new_key_file = root_ + "/new.key";
  for (const auto& [path, fill] : {std::pair{key_file, 'k'}, std::pair{new_key_file, 'n'}}) {
    std::ofstream(path, std::ios::binary) << std::string(store::kMasterKeySize, fill);
    ASSERT_EQ(chmod(path.c_str(), 0600), 0);
  }
  store::StoreOptions options = Options();
  options.master_key = std::string(store::kMasterKeySize, 'k');
  absl::StatusOr<std::unique_ptr<store::EventStore>> opened = store::EventStore::Open(db_, options);
  ASSERT_TRUE(opened.ok()) << opened.status();
  store_ = *std::move(opened);
  domain::CreateTaskCommand create;
  create.task_id = "t1";
  create.patient_id = "mrn-5";
  create.kind = v1::MANUAL;
  create.title = "Planted title";
  create.meta = {"coordinator-1", ""};
  Run(create);
  const std::string backups = root_ + "/backups";
  ASSERT_TRUE(store_->BackupTo(backups).ok());
  domain::ErasePatientCommand erase;
  erase.patient_id = "mrn-5";
  erase.reason = "wrong patient";
  erase.meta = {"admin-1", ""};
  absl::StatusOr<store::CommandResult> erased = store_->Execute(erase, "");
  ASSERT_TRUE(erased.ok()) << erased.status();
  const std::string list = root_ + "/erasures";
  ASSERT_TRUE(store::AppendErasure(list, {erased->events.back().position(), "default",
                                          *store_->Pseudonym("mrn-5")})
                  .ok());
  store_.reset();

  EXPECT_EQ(Ctl({"export", "--db", db_}).exit_code, 1) << "an encrypted database needs its key";
  const Outcome bad = Ctl({"restore", "--from", backups, "--db", root_ + "/x",
                           "--erasure-list", list});
  EXPECT_EQ(bad.exit_code, 2) << "--erasure-list needs --master-key-file";

  const std::string copy = root_ + "/copy";
  const Outcome restore = Ctl({"restore", "--from", backups, "--db", copy, "--erasure-list",
                               list, "--master-key-file", key_file});
  ASSERT_EQ(restore.exit_code, 0) << restore.out << restore.err;
  EXPECT_EQ(Field(restore.out, "erasures_reapplied"), "1");
  const Outcome exported = Ctl({"export", "--db", copy, "--master-key-file", key_file});
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  EXPECT_THAT(exported.out, HasSubstr("\"title\":\"[erased]\""));
  EXPECT_THAT(exported.out, Not(HasSubstr("Planted title")));
  EXPECT_THAT(exported.out, HasSubstr("\"patientErased\""));

  const Outcome rotate = Ctl({"rotate-master-key", "--db", copy, "--master-key-file", key_file,
                              "--new-master-key-file", new_key_file});
  ASSERT_EQ(rotate.exit_code, 0) << rotate.out << rotate.err;
  EXPECT_EQ(Ctl({"export", "--db", copy, "--master-key-file", key_file}).exit_code, 1);
  const Outcome rotated = Ctl({"export", "--db", copy, "--master-key-file", new_key_file});
  EXPECT_EQ(rotated.exit_code, 0) << rotated.err;
  EXPECT_EQ(rotated.out, exported.out) << "the log is untouched";
  EXPECT_EQ(Ctl({"verify", "--db", copy}).exit_code, 0) << "verify needs no key";
}

TEST_F(OutreachctlTest, RestoreIntoANonEmptyDirectoryExitsOneAndLeavesItAlone) {
  MakeData(2);
  store_.reset();
  const std::string backups = root_ + "/backups";
  ASSERT_EQ(Ctl({"backup", "--db", db_, "--to", backups}).exit_code, 0);
  const Outcome o = Ctl({"restore", "--from", backups, "--db", db_});
  EXPECT_EQ(o.exit_code, 1);
  EXPECT_THAT(o.err, HasSubstr("not empty"));
  EXPECT_EQ(Ctl({"verify", "--db", db_}).exit_code, 0);
}

// ---- usage ----

TEST_F(OutreachctlTest, HelpOnEveryCommandExitsZeroAndNamesItsFlags) {
  const Outcome top = Ctl({"--help"});
  EXPECT_EQ(top.exit_code, 0);
  for (const char* command : {"verify", "export", "rebuild", "backup", "restore"}) {
    EXPECT_THAT(top.out, HasSubstr(command));
    const Outcome help = Ctl({command, "--help"});
    EXPECT_EQ(help.exit_code, 0) << command;
    EXPECT_THAT(help.out, HasSubstr(absl::StrCat("Usage: outreachctl ", command)));
    EXPECT_THAT(help.out, HasSubstr("--db"));
  }
  EXPECT_THAT(Ctl({"verify", "--help"}).out, HasSubstr("--expect-hash HEX"));
  EXPECT_THAT(Ctl({"export", "-h"}).out, HasSubstr("--task ID"));
}

TEST_F(OutreachctlTest, HelpOfACommandListsEachOfItsFlagsAndMarksTheRequiredOnes) {
  const Outcome verify = Ctl({"verify", "--help"});
  EXPECT_EQ(verify.exit_code, 0);
  EXPECT_THAT(verify.out, HasSubstr("--db DIR REQUIRED"));
  EXPECT_THAT(verify.out, HasSubstr("--to N "));
  EXPECT_THAT(verify.out, Not(HasSubstr("--to N REQUIRED")));
  EXPECT_THAT(verify.out, HasSubstr("--expect-hash HEX "));
  EXPECT_THAT(verify.out, HasSubstr("Exit codes: 0 success, 1 failure, 2 bad usage."));
  EXPECT_EQ(verify.err, "");

  const Outcome restore = Ctl({"restore", "--help"});
  EXPECT_EQ(restore.exit_code, 0);
  EXPECT_THAT(restore.out, HasSubstr("--from DIR2 REQUIRED"));
  EXPECT_THAT(restore.out, HasSubstr("--db DIR3 REQUIRED"));
  // Help wins over a missing required flag, and runs nothing.
  const Outcome backup = Ctl({"backup", "--help"});
  EXPECT_EQ(backup.exit_code, 0) << backup.err;
  // Offline (--db and --to together) or live (--server): neither flag is required alone.
  EXPECT_THAT(backup.out, HasSubstr("--to DIR2 Needs: --db"));
  EXPECT_THAT(backup.out, HasSubstr("--server HOST:PORT Excludes: --db --to"));
  EXPECT_THAT(backup.out, Not(HasSubstr("head_position")));
}

TEST_F(OutreachctlTest, TopLevelHelpListsEveryCommandWithItsSummary) {
  const Outcome top = Ctl({"help"});
  EXPECT_EQ(top.exit_code, 0);
  EXPECT_THAT(top.out, HasSubstr("Usage: outreachctl [OPTIONS] SUBCOMMAND"));
  EXPECT_THAT(top.out, HasSubstr("print events as JSON lines"));
  EXPECT_THAT(top.out, HasSubstr("restore the latest backup into a new data directory"));
  EXPECT_EQ(Ctl({"--help"}).out, top.out);
}

TEST_F(OutreachctlTest, BadUsageExitsTwoAndSaysWhatIsWrong) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  const std::vector<Case> cases = {
      {{}, "outreachctl: A subcommand is required"},
      {{"frobnicate"}, "outreachctl: unknown command \"frobnicate\""},
      {{"--colour"}, "outreachctl: unknown flag --colour"},
      {{"verify"}, "outreachctl verify: --db is required"},
      {{"verify", "--db"}, "--db: 1 required DIR missing"},
      {{"verify", "--db", ""}, "--db: must not be empty"},
      {{"verify", "--db", "x", "--colour", "red"}, "not expected: red --colour"},
      {{"verify", "--db", "x", "extra"}, "argument was not expected: extra"},
      {{"verify", "--db", "x", "--db", "y"}, "--db: At Most 1 required but received 2"},
      {{"verify", "--db", "x", "--to", "ten"}, "--to: \"ten\" is not a whole number >= 1"},
      {{"verify", "--db", "x", "--to", "0"}, "--to: \"0\" is not a whole number >= 1"},
      {{"verify", "--db", "x", "--to", "-4"}, "--to: \"-4\" is not a whole number >= 1"},
      {{"verify", "--db", "x", "--to", "0x4"}, "--to: \"0x4\" is not a whole number >= 1"},
      {{"verify", "--db", "x", "--expect-hash", "abc"}, "--expect-hash: want 64 hex digits, got 3"},
      {{"verify", "--db", "x", "--expect-hash", std::string(64, 'g')},
       "--expect-hash: \"gggg"},
      {{"export", "--db", "x", "--from", "one"}, "--from: \"one\" is not a whole number >= 0"},
      {{"export", "--db", "x", "--task", "no spaces"}, "--task: \"no spaces\" is not a task id"},
      {{"backup", "--db", "x"}, "outreachctl backup: --db requires --to"},
      {{"backup"}, "outreachctl backup: "},
      {{"backup", "--server", "127.0.0.1:1", "--db", "x", "--to", "y"}, "excludes"},
      {{"backup", "--token-file", "t"}, "--token-file requires --server"},
      {{"restore", "--db", "x"}, "outreachctl restore: --from is required"},
  };
  for (const Case& c : cases) {
    const Outcome o = Ctl(c.args);
    EXPECT_EQ(o.exit_code, 2) << absl::StrJoin(c.args, " ");
    EXPECT_THAT(o.err, HasSubstr(c.says)) << absl::StrJoin(c.args, " ");
    EXPECT_THAT(o.err, HasSubstr("--help")) << absl::StrJoin(c.args, " ");
    EXPECT_THAT(o.out, Not(HasSubstr("head_position")));
  }
}

TEST_F(OutreachctlTest, AMissingRequiredFlagExitsTwoNamingItAndRunsNothing) {
  MakeData(1);
  store_.reset();
  const std::string backups = root_ + "/backups";
  const Outcome backup = Ctl({"backup", "--to", backups});
  EXPECT_EQ(backup.exit_code, 2);
  EXPECT_THAT(backup.err, HasSubstr("outreachctl backup: --to requires --db"));
  EXPECT_THAT(backup.err, HasSubstr("run 'outreachctl backup --help' for usage"));
  EXPECT_EQ(backup.out, "");
  EXPECT_FALSE(std::filesystem::exists(backups));
}

TEST_F(OutreachctlTest, ABadValueExitsTwoNamingTheFlagBeforeTheDatabaseIsOpened) {
  MakeData(1);
  store_.reset();
  const Outcome to = Ctl({"verify", "--db", db_, "--to", "abc"});
  EXPECT_EQ(to.exit_code, 2);
  EXPECT_THAT(to.err, HasSubstr("outreachctl verify: --to: \"abc\" is not a whole number >= 1"));
  EXPECT_EQ(to.out, "");
  const Outcome hash = Ctl({"verify", "--db", db_, "--expect-hash", "0123456789"});
  EXPECT_EQ(hash.exit_code, 2);
  EXPECT_THAT(hash.err, HasSubstr("outreachctl verify: --expect-hash: want 64 hex digits, got 10"));
  EXPECT_EQ(hash.out, "");
}

TEST_F(OutreachctlTest, RestoreFromADirectoryThatDoesNotExistIsBadUsage) {
  const std::string copy = root_ + "/copy";
  const Outcome o = Ctl({"restore", "--from", root_ + "/no-backups", "--db", copy});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_THAT(o.err, HasSubstr("--from: Directory does not exist: " + root_ + "/no-backups"));
  EXPECT_FALSE(std::filesystem::exists(copy));
}

TEST_F(OutreachctlTest, AnUnknownCommandExitsTwoAndRunsNothing) {
  MakeData(1);
  store_.reset();
  const Outcome o = Ctl({"repair", "--db", db_});
  EXPECT_EQ(o.exit_code, 2);
  EXPECT_THAT(o.err, HasSubstr("outreachctl: unknown command \"repair\""));
  EXPECT_THAT(o.err, HasSubstr("run 'outreachctl --help' for usage"));
  EXPECT_EQ(o.out, "");
}

}  // namespace
}  // namespace outreach::ctl
