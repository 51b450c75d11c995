// outreachctl: offline and live inspection of an outreach data directory (issue 4).
//
//   outreachctl verify  --db DIR [--to N] [--expect-hash HEX]
//   outreachctl export  --db DIR [--from N] [--task ID] [--master-key-file FILE]
//   outreachctl export-fhir --db DIR --out DIR [--practice P] [--from POSITION]
//   outreachctl rebuild --db DIR
//   outreachctl backup  --db DIR --to DIR2
//   outreachctl backup  --server HOST:PORT [--token-file FILE] [--tls-ca PEM]
//   outreachctl restore --from DIR2 --db DIR3 [--erasure-list FILE --master-key-file FILE]
//   outreachctl rotate-master-key --db DIR --master-key-file FILE --new-master-key-file FILE
//
// verify, export and export-fhir open the directory as a RocksDB secondary instance (a scratch
// directory under $TMPDIR holds its info log), so they work beside a running outreachd, which
// holds the LOCK file. rebuild and backup --db need the directory to themselves (outreachd
// stopped, or a copy); backup --server asks a running outreachd to back itself up
// (ctl/remote_backup.h).
//
// The command line (flags, help, value checks) is ctl/command_flags.{h,cc}. Exit codes: 0 success
// (verify: every check holds), 1 failure (the message says what failed), 2 bad usage (the message
// says what is wrong, and nothing was run).
#include <sys/stat.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <variant>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ctl/command_flags.h"
#include "ctl/export_fhir.h"
#include "ctl/progress.h"
#include "logging/log.h"
#include "ctl/remote_backup.h"
#include "store/event_json.h"
#include "store/event_store.h"
#include "store/erasure_list.h"
#include "store/privacy.h"

namespace outreach::ctl {
namespace {

// The process's log (logging/log.h), as text: "outreachctl <command>: <message>". Warnings and
// errors only: a command's result is on stdout, and its progress is ctl/progress.h's.
void ConfigureLog(absl::string_view command) {
  logging::Configure({.program = absl::StrCat("outreachctl ", command),
                      .format = logging::Format::kText,
                      .level = logging::Level::kWarning});
}

int Failure(absl::string_view /*command*/, absl::string_view what) {
  logging::Error(what);
  return kExitFailed;
}

std::string Hex(absl::string_view bytes) { return absl::BytesToHexString(bytes); }

// A scratch directory for a RocksDB secondary instance, removed when this goes away.
class ScratchDir {
 public:
  static absl::StatusOr<ScratchDir> Create() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        absl::StrCat(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp", "/outreachctl.XXXXXX");
    if (mkdtemp(pattern.data()) == nullptr) {
      return absl::UnavailableError(absl::StrCat("cannot create a scratch directory ", pattern));
    }
    return ScratchDir(std::move(pattern));
  }
  ScratchDir(ScratchDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  ScratchDir& operator=(ScratchDir&&) = delete;
  ~ScratchDir() {
    if (!path_.empty()) {
      std::error_code ignored;
      std::filesystem::remove_all(path_, ignored);
    }
  }
  const std::string& path() const { return path_; }

 private:
  explicit ScratchDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// A read-only view of `dir` that is safe beside a running writer.
struct LiveView {
  ScratchDir scratch;
  std::unique_ptr<store::EventStore> store;
};

// The master key in `path` (empty: none).
absl::StatusOr<std::string> MasterKey(const std::string& path) {
  if (path.empty()) return std::string();
  return store::ReadMasterKeyFile(path);
}

absl::StatusOr<LiveView> OpenLive(const std::string& dir, bool verify_on_open,
                                  const std::string& master_key_file = "") {
  absl::StatusOr<std::string> key = MasterKey(master_key_file);
  if (!key.ok()) return key.status();
  absl::StatusOr<ScratchDir> scratch = ScratchDir::Create();
  if (!scratch.ok()) return scratch.status();
  store::ReadOnlyOptions options;
  options.secondary_path = scratch->path();
  options.verify_on_open = verify_on_open;
  options.master_key = *std::move(key);
  absl::StatusOr<std::unique_ptr<store::EventStore>> opened =
      store::EventStore::OpenReadOnly(dir, options);
  if (!opened.ok()) return opened.status();
  return LiveView{*std::move(scratch), *std::move(opened)};
}

// The store opened for writing, for the commands that change or copy the directory. An
// encrypted one opens without its key unless `master_key` is given (rebuild and backup need
// none; writes are then refused).
absl::StatusOr<std::unique_ptr<store::EventStore>> OpenExclusive(const std::string& dir,
                                                                 std::string master_key = "") {
  store::StoreOptions options;
  options.create_if_missing = false;
  options.open_encrypted_without_key = master_key.empty();
  options.master_key = std::move(master_key);
  absl::StatusOr<std::unique_ptr<store::EventStore>> opened =
      store::EventStore::Open(dir, options);
  if (!opened.ok() && opened.status().code() == absl::StatusCode::kUnavailable) {
    return absl::UnavailableError(absl::StrCat(
        opened.status().message(),
        " (is outreachd running on this directory? stop it, or work on a copy)"));
  }
  return opened;
}

int Run(const VerifyFlags& flags) {
  ConfigureLog("verify");
  store::VerifyOptions options;
  options.to_position = flags.to;
  options.expected_head_hash = absl::HexStringToBytes(flags.expect_hash);  // checked: hex
  // Without verification at open: the full check below reports a bad log with its position.
  absl::StatusOr<LiveView> view = OpenLive(flags.db, /*verify_on_open=*/false);
  if (!view.ok()) return Failure("verify", view.status().ToString());
  Progress progress("verify", flags.to != 0 ? flags.to : view->store->HeadPosition());
  options.progress = [&](uint64_t checked) { progress.Update(checked); };
  absl::StatusOr<store::VerifyReport> report = view->store->VerifyLog(options);
  if (!report.ok()) return Failure("verify", report.status().ToString());
  progress.Finish(report->events_checked);
  std::printf("head_position: %llu\nhead_hash: %s\nevents_checked: %llu\n",
              static_cast<unsigned long long>(report->head_position),
              Hex(report->head_hash).c_str(),
              static_cast<unsigned long long>(report->events_checked));
  if (!report->ok) {
    std::printf("log: FAILED at position %llu: %s\n",
                static_cast<unsigned long long>(report->first_bad_position),
                report->problem.c_str());
    std::fflush(stdout);
    return Failure("verify", absl::StrCat("the log does not verify at position ",
                                          report->first_bad_position));
  }
  std::printf("log: ok\n");
  absl::Status projections = view->store->VerifyProjections();
  if (!projections.ok()) {
    std::printf("projections: FAILED: %s\n", std::string(projections.message()).c_str());
    std::fflush(stdout);
    return Failure("verify", "the projections do not equal a replay of the log");
  }
  std::printf("projections: ok\n");
  // The read-access audit log's own chain, from its anchor (records past retention are gone;
  // the anchor keeps the hash the first kept record chains from).
  if (const store::AccessLog* access = view->store->access_log(); access != nullptr) {
    const store::AccessVerifyReport a = access->Verify();
    std::printf("access_log_first_sequence: %llu\naccess_log_head_sequence: %llu\n",
                static_cast<unsigned long long>(a.first_sequence),
                static_cast<unsigned long long>(a.head_sequence));
    if (!a.ok) {
      std::printf("access_log: FAILED at sequence %llu: %s\n",
                  static_cast<unsigned long long>(a.first_bad_sequence), a.problem.c_str());
      std::fflush(stdout);
      return Failure("verify", absl::StrCat("the access log does not verify at sequence ",
                                            a.first_bad_sequence));
    }
    std::printf("access_log: ok\n");
  }
  return kExitOk;
}

int Run(const ExportFlags& flags) {
  ConfigureLog("export");
  absl::StatusOr<LiveView> view =
      OpenLive(flags.db, /*verify_on_open=*/true, flags.master_key_file);
  if (!view.ok()) return Failure("export", view.status().ToString());
  // A task's events are not counted ahead: its export shows the count and the rate only.
  const uint64_t head = view->store->HeadPosition();
  const uint64_t from = std::max<uint64_t>(flags.from, 1);
  Progress progress("export", flags.task.empty() && head >= from ? head - from + 1 : 0);
  uint64_t lines = 0;
  absl::StatusOr<uint64_t> written = store::ExportJsonLines(
      *view->store, flags.from, flags.task, [&](absl::string_view line) {
        if (std::fwrite(line.data(), 1, line.size(), stdout) != line.size()) {
          return absl::UnavailableError("writing to stdout failed");
        }
        progress.Update(++lines);
        return absl::OkStatus();
      });
  if (std::fflush(stdout) != 0 && written.ok()) {
    written = absl::UnavailableError("writing to stdout failed");
  }
  if (!written.ok()) return Failure("export", written.status().ToString());
  progress.Finish(*written);
  return kExitOk;
}

int Run(const ExportFhirFlags& flags) {
  ConfigureLog("export-fhir");
  absl::StatusOr<LiveView> view =
      OpenLive(flags.db, /*verify_on_open=*/true, flags.master_key_file);
  if (!view.ok()) return Failure("export-fhir", view.status().ToString());
  Progress progress("export-fhir", view->store->HeadPosition());
  absl::StatusOr<FhirExportSummary> summary =
      ExportFhir(*view->store, flags, [&](uint64_t read) { progress.Update(read); });
  if (!summary.ok()) return Failure("export-fhir", summary.status().ToString());
  progress.Finish(summary->events_read);
  std::printf("head_position: %llu\nevents_read: %llu\nTask: %llu\nCommunication: %llu\n"
              "Provenance: %llu\nout: %s\n",
              static_cast<unsigned long long>(summary->head_position),
              static_cast<unsigned long long>(summary->events_read),
              static_cast<unsigned long long>(summary->tasks),
              static_cast<unsigned long long>(summary->communications),
              static_cast<unsigned long long>(summary->provenances), flags.out.c_str());
  return kExitOk;
}

int Run(const RebuildFlags& flags) {
  ConfigureLog("rebuild");
  absl::StatusOr<std::unique_ptr<store::EventStore>> opened = OpenExclusive(flags.db);
  if (!opened.ok()) return Failure("rebuild", opened.status().ToString());
  store::EventStore& store = **opened;
  Progress progress("rebuild", store.HeadPosition());
  absl::Status rebuilt = store.RebuildProjections(
      [&](const store::RebuildProgress& folded) { progress.Update(folded.events_folded); },
      /*every=*/10000);
  if (!rebuilt.ok()) return Failure("rebuild", rebuilt.ToString());
  progress.Finish(store.HeadPosition());
  if (absl::Status check = store.VerifyProjections(); !check.ok()) {
    return Failure("rebuild", absl::StrCat("the rebuilt projections do not verify: ",
                                           check.ToString()));
  }
  return kExitOk;
}

// Live: the server backs itself up into its --backup-dir.
int RunOnServer(const BackupFlags& flags) {
  absl::StatusOr<v1::CreateBackupResponse> made = CreateBackupOnServer(flags);
  if (!made.ok()) return Failure("backup", made.status().ToString());
  std::string kept;
  for (uint32_t id : made->kept_backup_ids()) absl::StrAppend(&kept, kept.empty() ? "" : ",", id);
  std::printf("backup: %s (live, into its --backup-dir)\nbackup_id: %u\n"
              "covers_through_position: %llu\nsize_bytes: %llu\nfile_count: %u\n"
              "kept_backup_ids: %s\n",
              flags.server.c_str(), made->backup_id(),
              static_cast<unsigned long long>(made->covers_through_position()),
              static_cast<unsigned long long>(made->size_bytes()), made->file_count(),
              kept.c_str());
  return kExitOk;
}

int Run(const BackupFlags& flags) {
  ConfigureLog("backup");
  if (!flags.server.empty()) return RunOnServer(flags);
  absl::StatusOr<std::unique_ptr<store::EventStore>> opened = OpenExclusive(flags.db);
  if (!opened.ok()) return Failure("backup", opened.status().ToString());
  if (absl::Status s = (*opened)->BackupTo(flags.to); !s.ok()) {
    return Failure("backup", s.ToString());
  }
  const store::VerifyReport report = (*opened)->VerifyLog();
  std::printf("backup: %s -> %s\nhead_position: %llu\nhead_hash: %s\n", flags.db.c_str(),
              flags.to.c_str(), static_cast<unsigned long long>(report.head_position),
              Hex(report.head_hash).c_str());
  return kExitOk;
}

// The erasures of --erasure-list after the restored head, applied again and appended to it.
int ReapplyErasures(const RestoreFlags& flags) {
  absl::StatusOr<std::vector<store::ErasureEntry>> entries =
      store::ReadErasureList(flags.erasure_list);
  if (!entries.ok()) return Failure("restore", entries.status().ToString());
  absl::StatusOr<std::string> key = MasterKey(flags.master_key_file);
  if (!key.ok()) return Failure("restore", key.status().ToString());
  absl::StatusOr<std::unique_ptr<store::EventStore>> opened =
      OpenExclusive(flags.db, *std::move(key));
  if (!opened.ok()) return Failure("restore", opened.status().ToString());
  absl::StatusOr<std::vector<store::ErasureEntry>> applied =
      (*opened)->ReapplyErasures(*entries);
  if (!applied.ok()) return Failure("restore", applied.status().ToString());
  for (const store::ErasureEntry& entry : *applied) {
    if (absl::Status s = store::AppendErasure(flags.erasure_list, entry); !s.ok()) {
      return Failure("restore", s.ToString());
    }
  }
  std::printf("erasures_listed: %zu\nerasures_reapplied: %zu\n", entries->size(),
              applied->size());
  return kExitOk;
}

int Run(const RestoreFlags& flags) {
  ConfigureLog("restore");
  if (absl::Status s = store::EventStore::RestoreFrom(flags.from, flags.db); !s.ok()) {
    return Failure("restore", s.ToString());
  }
  if (!flags.erasure_list.empty()) {
    // Patients erased after the backup was taken: erased again (README "Privacy").
    if (int failed = ReapplyErasures(flags); failed != kExitOk) return failed;
  }
  absl::StatusOr<LiveView> view = OpenLive(flags.db, /*verify_on_open=*/false);
  if (!view.ok()) return Failure("restore", view.status().ToString());
  const store::VerifyReport report = view->store->VerifyLog();
  std::printf("restore: %s -> %s\nhead_position: %llu\nhead_hash: %s\n", flags.from.c_str(),
              flags.db.c_str(), static_cast<unsigned long long>(report.head_position),
              Hex(report.head_hash).c_str());
  if (flags.erasure_list.empty() && view->store->encrypted()) {
    std::fprintf(stderr,
                 "restore: no --erasure-list: patients erased after this backup was taken are "
                 "not erased again in it (README \"Privacy\")\n");
  }
  return report.ok ? kExitOk : Failure("restore", report.problem);
}

int Run(const RotateMasterKeyFlags& flags) {
  ConfigureLog("rotate-master-key");
  absl::StatusOr<std::string> old_key = MasterKey(flags.master_key_file);
  if (!old_key.ok()) return Failure("rotate-master-key", old_key.status().ToString());
  absl::StatusOr<std::string> new_key = MasterKey(flags.new_master_key_file);
  if (!new_key.ok()) return Failure("rotate-master-key", new_key.status().ToString());
  absl::Status rotated = store::RotateMasterKeyOf(flags.db, *old_key, *new_key);
  if (!rotated.ok()) return Failure("rotate-master-key", rotated.ToString());
  std::printf("rotate-master-key: %s now opens with %s only\n", flags.db.c_str(),
              flags.new_master_key_file.c_str());
  return kExitOk;
}

int Run(int argc, char** argv) {
  const ParsedCommandLine parsed = ParseCommandLine(argc, argv);
  if (!parsed.command.has_value()) return parsed.exit_code;
  return std::visit([](const auto& flags) { return Run(flags); }, *parsed.command);
}

}  // namespace
}  // namespace outreach::ctl

int main(int argc, char** argv) {
  // What it creates (a restored database, backups, a rebuilt copy's files) holds call notes:
  // private to this user, as outreachd's own files are, so that outreachd serves a database
  // restored here without --insecure-db-permissions.
  umask(077);
  return outreach::ctl::Run(argc, argv);
}
