// outreachctl: offline and live inspection of an outreach data directory (issue 4).
//
//   outreachctl verify  --db DIR [--to N] [--expect-hash HEX]
//   outreachctl export  --db DIR [--from N] [--task ID]
//   outreachctl rebuild --db DIR
//   outreachctl backup  --db DIR --to DIR2
//   outreachctl restore --from DIR2 --db DIR3
//
// verify and export open the directory as a RocksDB secondary instance (a scratch directory
// under $TMPDIR holds its info log), so they work beside a running outreachd, which holds the
// LOCK file. rebuild and backup need the directory to themselves (outreachd stopped, or a copy).
//
// Exit codes: 0 success (verify: every check holds), 1 failure (the message says what failed),
// 2 bad usage (the message says what is wrong).
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "ctl/command_line.h"
#include "domain/validation.h"
#include "store/event_codec.h"
#include "store/event_json.h"
#include "store/event_store.h"

namespace outreach::ctl {
namespace {

constexpr int kOk = 0;
constexpr int kFailed = 1;
constexpr int kUsage = 2;

const CommandSpec kVerify{
    "verify",
    "check the hash chain, positions, stream versions and projections",
    "Checks every event of the log in DIR: positions gap-free from 1, each hash chained to the\n"
    "previous one and covering the stored bytes, stream versions 1, 2, 3, ... per task, and\n"
    "that every projection and index row equals a fresh fold of the log, and the read-access\n"
    "log's hash chain from its first kept record. Prints the head\n"
    "position and its hash (hex). With --to N only positions 1..N are checked, and --expect-hash\n"
    "compares the hash of event N (of the head without --to) with one kept earlier.\n"
    "Works on the directory of a running outreachd. Exit 0 only when every check holds.",
    {{"db", "DIR", "the data directory", true},
     {"to", "N", "check the log only through position N", false},
     {"expect-hash", "HEX", "the 64-hex-digit hash the event at N (or the head) must have",
      false}}};

const CommandSpec kExport{
    "export",
    "print events as JSON lines",
    "Prints the events of the log in DIR as JSON lines on stdout, one outreach.v1.EventRecord\n"
    "per line in the proto3 JSON mapping, in position order, through the head as it was when\n"
    "the export began. Works on the directory of a running outreachd.",
    {{"db", "DIR", "the data directory", true},
     {"from", "N", "the first position to print (default 1)", false},
     {"task", "ID", "only this task's events", false}}};

const CommandSpec kRebuild{
    "rebuild",
    "rebuild projections and indexes from the log",
    "Deletes every projection and index row in DIR and folds them again from the log alone,\n"
    "reporting progress and the rate (events/s) on stderr, then checks the result against the\n"
    "log. Needs the directory to itself: stop outreachd, or work on a copy.",
    {{"db", "DIR", "the data directory", true}}};

const CommandSpec kBackup{
    "backup",
    "back up a data directory",
    "Adds a consistent backup of DIR to the backup directory DIR2 (RocksDB BackupEngine: files\n"
    "are checksummed, and unchanged ones are shared between backups), then verifies it. Needs\n"
    "the directory to itself: stop outreachd first.",
    {{"db", "DIR", "the data directory", true},
     {"to", "DIR2", "the backup directory (created if missing)", true}}};

const CommandSpec kRestore{
    "restore",
    "restore the latest backup into a new data directory",
    "Restores the latest backup in DIR2 into DIR3, which must not exist or be empty, then\n"
    "verifies the restored log and projections and prints its head position and hash.",
    {{"from", "DIR2", "the backup directory", true},
     {"db", "DIR3", "the new data directory", true}}};

const CommandSpec* const kCommands[] = {&kVerify, &kExport, &kRebuild, &kBackup, &kRestore};

std::string TopHelp() {
  std::string out =
      "usage: outreachctl COMMAND [flags]\n\n"
      "Inspects and maintains an outreach data directory, offline or beside a running\n"
      "outreachd.\n\n"
      "commands:\n";
  for (const CommandSpec* command : kCommands) {
    absl::StrAppend(&out, "  ", absl::StrFormat("%-9s", command->name), command->summary, "\n");
  }
  absl::StrAppend(&out, "\n'outreachctl COMMAND --help' describes a command's flags.\n"
                        "Exit codes: 0 success, 1 failure, 2 bad usage.\n");
  return out;
}

int UsageError(const CommandSpec* command, absl::string_view what) {
  std::fprintf(stderr, "outreachctl%s%s: %s\n", command != nullptr ? " " : "",
               command != nullptr ? command->name.c_str() : "", std::string(what).c_str());
  std::fprintf(stderr, "run 'outreachctl%s%s --help' for usage\n", command != nullptr ? " " : "",
               command != nullptr ? command->name.c_str() : "");
  return kUsage;
}

int Failure(const CommandSpec& command, absl::string_view what) {
  std::fprintf(stderr, "outreachctl %s: %s\n", command.name.c_str(), std::string(what).c_str());
  return kFailed;
}

std::string Hex(absl::string_view bytes) { return absl::BytesToHexString(bytes); }

// INVALID_ARGUMENT unless `text` is a decimal number >= `min`.
absl::StatusOr<uint64_t> ParseCount(absl::string_view flag, absl::string_view text,
                                    uint64_t min) {
  uint64_t value = 0;
  if (!absl::SimpleAtoi(text, &value) || !absl::ascii_isdigit(text.front()) || value < min) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": \"", text, "\" is not a whole number >= ", min));
  }
  return value;
}

absl::StatusOr<std::string> ParseHash(absl::string_view text) {
  if (text.size() != 2 * store::kHashSize) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--expect-hash: want ", 2 * store::kHashSize, " hex digits, got ", text.size()));
  }
  for (char c : text) {
    if (!absl::ascii_isxdigit(c)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--expect-hash: \"", text, "\" is not hexadecimal"));
    }
  }
  return absl::HexStringToBytes(text);
}

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

absl::StatusOr<LiveView> OpenLive(const std::string& dir, bool verify_on_open) {
  absl::StatusOr<ScratchDir> scratch = ScratchDir::Create();
  if (!scratch.ok()) return scratch.status();
  store::ReadOnlyOptions options;
  options.secondary_path = scratch->path();
  options.verify_on_open = verify_on_open;
  absl::StatusOr<std::unique_ptr<store::EventStore>> opened =
      store::EventStore::OpenReadOnly(dir, options);
  if (!opened.ok()) return opened.status();
  return LiveView{*std::move(scratch), *std::move(opened)};
}

// The store opened for writing, for the commands that change or copy the directory.
absl::StatusOr<std::unique_ptr<store::EventStore>> OpenExclusive(const std::string& dir) {
  store::StoreOptions options;
  options.create_if_missing = false;
  absl::StatusOr<std::unique_ptr<store::EventStore>> opened =
      store::EventStore::Open(dir, options);
  if (!opened.ok() && opened.status().code() == absl::StatusCode::kUnavailable) {
    return absl::UnavailableError(absl::StrCat(
        opened.status().message(),
        " (is outreachd running on this directory? stop it, or work on a copy)"));
  }
  return opened;
}

int Verify(const ParsedFlags& flags) {
  store::VerifyOptions options;
  if (std::optional<std::string> to = flags.Get("to")) {
    absl::StatusOr<uint64_t> n = ParseCount("to", *to, 1);
    if (!n.ok()) return UsageError(&kVerify, n.status().message());
    options.to_position = *n;
  }
  if (std::optional<std::string> hex = flags.Get("expect-hash")) {
    absl::StatusOr<std::string> hash = ParseHash(*hex);
    if (!hash.ok()) return UsageError(&kVerify, hash.status().message());
    options.expected_head_hash = *std::move(hash);
  }
  // Without verification at open: the full check below reports a bad log with its position.
  absl::StatusOr<LiveView> view = OpenLive(*flags.Get("db"), /*verify_on_open=*/false);
  if (!view.ok()) return Failure(kVerify, view.status().ToString());
  absl::StatusOr<store::VerifyReport> report = view->store->VerifyLog(options);
  if (!report.ok()) return Failure(kVerify, report.status().ToString());
  std::printf("head_position: %llu\nhead_hash: %s\nevents_checked: %llu\n",
              static_cast<unsigned long long>(report->head_position),
              Hex(report->head_hash).c_str(),
              static_cast<unsigned long long>(report->events_checked));
  if (!report->ok) {
    std::printf("log: FAILED at position %llu: %s\n",
                static_cast<unsigned long long>(report->first_bad_position),
                report->problem.c_str());
    std::fflush(stdout);
    return Failure(kVerify, absl::StrCat("the log does not verify at position ",
                                         report->first_bad_position));
  }
  std::printf("log: ok\n");
  absl::Status projections = view->store->VerifyProjections();
  if (!projections.ok()) {
    std::printf("projections: FAILED: %s\n", std::string(projections.message()).c_str());
    std::fflush(stdout);
    return Failure(kVerify, "the projections do not equal a replay of the log");
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
      return Failure(kVerify, absl::StrCat("the access log does not verify at sequence ",
                                           a.first_bad_sequence));
    }
    std::printf("access_log: ok\n");
  }
  return kOk;
}

int Export(const ParsedFlags& flags) {
  uint64_t from = 1;
  if (std::optional<std::string> text = flags.Get("from")) {
    absl::StatusOr<uint64_t> n = ParseCount("from", *text, 0);
    if (!n.ok()) return UsageError(&kExport, n.status().message());
    from = *n;
  }
  const std::string task_id = flags.Get("task").value_or("");
  if (!task_id.empty() && !domain::IsValidId(task_id)) {
    return UsageError(&kExport, absl::StrCat("--task: \"", task_id,
                                             "\" is not a task id (1-64 of [A-Za-z0-9._:-])"));
  }
  absl::StatusOr<LiveView> view = OpenLive(*flags.Get("db"), /*verify_on_open=*/true);
  if (!view.ok()) return Failure(kExport, view.status().ToString());
  absl::StatusOr<uint64_t> written = store::ExportJsonLines(
      *view->store, from, task_id, [](absl::string_view line) {
        if (std::fwrite(line.data(), 1, line.size(), stdout) != line.size()) {
          return absl::UnavailableError("writing to stdout failed");
        }
        return absl::OkStatus();
      });
  if (std::fflush(stdout) != 0 && written.ok()) {
    written = absl::UnavailableError("writing to stdout failed");
  }
  if (!written.ok()) return Failure(kExport, written.status().ToString());
  std::fprintf(stderr, "export: %llu events\n", static_cast<unsigned long long>(*written));
  return kOk;
}

int Rebuild(const ParsedFlags& flags) {
  absl::StatusOr<std::unique_ptr<store::EventStore>> opened = OpenExclusive(*flags.Get("db"));
  if (!opened.ok()) return Failure(kRebuild, opened.status().ToString());
  store::EventStore& store = **opened;
  const absl::Time start = absl::Now();
  auto rate = [&](uint64_t events) {
    const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
    return seconds > 0 ? static_cast<double>(events) / seconds : 0.0;
  };
  absl::Status rebuilt = store.RebuildProjections(
      [&](const store::RebuildProgress& progress) {
        const double percent =
            progress.head_position == 0
                ? 100.0
                : 100.0 * static_cast<double>(progress.events_folded) /
                      static_cast<double>(progress.head_position);
        std::fprintf(stderr, "rebuild: %llu/%llu events (%.1f%%), %.0f events/s\n",
                     static_cast<unsigned long long>(progress.events_folded),
                     static_cast<unsigned long long>(progress.head_position), percent,
                     rate(progress.events_folded));
      },
      /*every=*/10000);
  if (!rebuilt.ok()) return Failure(kRebuild, rebuilt.ToString());
  const absl::Duration took = absl::Now() - start;
  std::fprintf(stderr, "rebuild: done: %llu events in %s (%.0f events/s)\n",
               static_cast<unsigned long long>(store.HeadPosition()),
               absl::FormatDuration(took).c_str(), rate(store.HeadPosition()));
  if (absl::Status check = store.VerifyProjections(); !check.ok()) {
    return Failure(kRebuild, absl::StrCat("the rebuilt projections do not verify: ",
                                          check.ToString()));
  }
  return kOk;
}

int Backup(const ParsedFlags& flags) {
  absl::StatusOr<std::unique_ptr<store::EventStore>> opened = OpenExclusive(*flags.Get("db"));
  if (!opened.ok()) return Failure(kBackup, opened.status().ToString());
  const std::string to = *flags.Get("to");
  if (absl::Status s = (*opened)->BackupTo(to); !s.ok()) return Failure(kBackup, s.ToString());
  const store::VerifyReport report = (*opened)->VerifyLog();
  std::printf("backup: %s -> %s\nhead_position: %llu\nhead_hash: %s\n",
              flags.Get("db")->c_str(), to.c_str(),
              static_cast<unsigned long long>(report.head_position),
              Hex(report.head_hash).c_str());
  return kOk;
}

int Restore(const ParsedFlags& flags) {
  const std::string db = *flags.Get("db");
  if (absl::Status s = store::EventStore::RestoreFrom(*flags.Get("from"), db); !s.ok()) {
    return Failure(kRestore, s.ToString());
  }
  absl::StatusOr<LiveView> view = OpenLive(db, /*verify_on_open=*/false);
  if (!view.ok()) return Failure(kRestore, view.status().ToString());
  const store::VerifyReport report = view->store->VerifyLog();
  std::printf("restore: %s -> %s\nhead_position: %llu\nhead_hash: %s\n",
              flags.Get("from")->c_str(), db.c_str(),
              static_cast<unsigned long long>(report.head_position),
              Hex(report.head_hash).c_str());
  return report.ok ? kOk : Failure(kRestore, report.problem);
}

int Run(int argc, char** argv) {
  if (argc < 2) return UsageError(nullptr, "missing COMMAND");
  const std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    std::fputs(TopHelp().c_str(), stdout);
    return kOk;
  }
  const CommandSpec* command = nullptr;
  for (const CommandSpec* candidate : kCommands) {
    if (candidate->name == name) command = candidate;
  }
  if (command == nullptr) {
    return UsageError(nullptr, absl::StrCat("unknown command \"", name, "\""));
  }
  const std::vector<std::string> args(argv + 2, argv + argc);
  absl::StatusOr<ParsedFlags> flags = ParseFlags(*command, args);
  if (!flags.ok()) return UsageError(command, flags.status().message());
  if (flags->help) {
    std::fputs(Help(*command).c_str(), stdout);
    return kOk;
  }
  if (command == &kVerify) return Verify(*flags);
  if (command == &kExport) return Export(*flags);
  if (command == &kRebuild) return Rebuild(*flags);
  if (command == &kBackup) return Backup(*flags);
  return Restore(*flags);
}

}  // namespace
}  // namespace outreach::ctl

int main(int argc, char** argv) { return outreach::ctl::Run(argc, argv); }
