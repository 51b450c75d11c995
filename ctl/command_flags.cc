#include "ctl/command_flags.h"

#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "domain/validation.h"
#include "store/event_codec.h"

namespace outreach::ctl {
namespace {

constexpr char kExitCodes[] = "Exit codes: 0 success, 1 failure, 2 bad usage.";

// ---- value checks: each returns "" when the value is good, else what is wrong with it (CLI11
// reports it as "--flag: <what>") ----

CLI::Validator NonEmpty() {
  return CLI::Validator(
      [](std::string& value) { return value.empty() ? std::string("must not be empty") : ""; }, "",
      "NonEmpty");
}

// A decimal number >= min: no sign, no hex or octal prefix (which CLI11's own conversion takes).
CLI::Validator WholeNumberAtLeast(uint64_t min) {
  return CLI::Validator(
      [min](std::string& value) -> std::string {
        uint64_t n = 0;
        if (value.empty() || !absl::ascii_isdigit(value.front()) || !absl::SimpleAtoi(value, &n) ||
            n < min) {
          return absl::StrCat("\"", value, "\" is not a whole number >= ", min);
        }
        return "";
      },
      "", "WholeNumberAtLeast");
}

// A hash as outreachctl verify prints it: 2 * kHashSize hex digits.
CLI::Validator HexHash() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        if (value.size() != 2 * store::kHashSize) {
          return absl::StrCat("want ", 2 * store::kHashSize, " hex digits, got ", value.size());
        }
        for (char c : value) {
          if (!absl::ascii_isxdigit(c)) return absl::StrCat("\"", value, "\" is not hexadecimal");
        }
        return "";
      },
      "", "HexHash");
}

CLI::Validator TaskId() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        if (domain::IsValidId(value)) return "";
        return absl::StrCat("\"", value, "\" is not a task id (1-64 of [A-Za-z0-9._:-])");
      },
      "", "TaskId");
}

// ---- the subcommands ----

// The summary goes in `outreachctl --help`'s list; the paragraph below a command's own flags.
void Describe(CLI::App& command, const std::string& paragraph) {
  command.footer(absl::StrCat(paragraph, "\n\n", kExitCodes));
}

// Every flag of outreachctl takes exactly one value, once.
CLI::Option* AddFlag(CLI::App& command, const std::string& name, std::string& value,
                     const std::string& type, const std::string& help) {
  return command.add_option(name, value, help)->type_name(type)->check(NonEmpty());
}

CLI::Option* AddFlag(CLI::App& command, const std::string& name, uint64_t& value,
                     const std::string& type, const std::string& help, uint64_t min) {
  return command.add_option(name, value, help)->type_name(type)->check(WholeNumberAtLeast(min));
}

CLI::App* AddVerify(CLI::App& app, VerifyFlags& flags) {
  CLI::App* verify = app.add_subcommand(
      "verify", "check the hash chain, positions, stream versions and projections");
  Describe(
      *verify,
      "Checks every event of the log in DIR: positions gap-free from 1, each hash chained to the\n"
      "previous one and covering the stored bytes, stream versions 1, 2, 3, ... per task, and\n"
      "that every projection and index row equals a fresh fold of the log, and the read-access\n"
      "log's hash chain from its first kept record. Prints the head position and its hash\n"
      "(hex). With --to N only positions 1..N are checked, and --expect-hash compares the hash\n"
      "of event N (of the head without --to) with one kept earlier.\n"
      "Works on the directory of a running outreachd. Exit 0 only when every check holds.");
  AddFlag(*verify, "--db", flags.db, "DIR", "the data directory")->required();
  AddFlag(*verify, "--to", flags.to, "N", "check the log only through position N", 1);
  AddFlag(*verify, "--expect-hash", flags.expect_hash, "HEX",
          "the 64-hex-digit hash the event at N (or the head) must have")
      ->check(HexHash());
  return verify;
}

// --master-key-file: what reads personal fields of an encrypted database needs.
CLI::Option* AddMasterKeyFlag(CLI::App& command, std::string& path) {
  return AddFlag(command, "--master-key-file", path, "FILE",
                 "the master key of an encrypted database (README \"Privacy\"); needed to "
                 "read its personal fields")
      ->check(CLI::ExistingFile.description(""));
}

CLI::App* AddExport(CLI::App& app, ExportFlags& flags) {
  CLI::App* exp = app.add_subcommand("export", "print events as JSON lines");
  Describe(
      *exp,
      "Prints the events of the log in DIR as JSON lines on stdout, one outreach.v1.EventRecord\n"
      "per line in the proto3 JSON mapping, in position order, through the head as it was when\n"
      "the export began. Works on the directory of a running outreachd.");
  AddFlag(*exp, "--db", flags.db, "DIR", "the data directory")->required();
  AddFlag(*exp, "--from", flags.from, "N", "the first position to print (default 1)", 0);
  AddFlag(*exp, "--task", flags.task, "ID", "only this task's events")->check(TaskId());
  AddMasterKeyFlag(*exp, flags.master_key_file);
  return exp;
}

CLI::Validator PracticeId() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        if (domain::IsValidId(value)) return "";
        return absl::StrCat("\"", value, "\" is not a practice id (1-64 of [A-Za-z0-9._:-])");
      },
      "", "PracticeId");
}

CLI::App* AddExportFhir(CLI::App& app, ExportFhirFlags& flags) {
  CLI::App* exp = app.add_subcommand("export-fhir", "write FHIR R4 Bulk Data NDJSON files");
  Describe(
      *exp,
      "Writes Task.ndjson (one Task per task, its state at the head), Communication.ndjson (one\n"
      "per logged contact) and Provenance.ndjson (one per task event) into OUT, FHIR R4 in the\n"
      "Bulk Data NDJSON format, from the log in DIR as it was when the export began (README\n"
      "\"FHIR export\" has the mapping). With --from N: the Provenance of events N and later, and\n"
      "the Task and Communications of every task those events touch, at the head. Files are\n"
      "replaced whole; re-exporting gives the same resource ids. Prints how many resources of\n"
      "each type were written. Works on the directory of a running outreachd.");
  AddFlag(*exp, "--db", flags.db, "DIR", "the data directory")->required();
  AddFlag(*exp, "--out", flags.out, "OUT", "the directory to write the files to (created if "
          "missing)")->required();
  AddFlag(*exp, "--practice", flags.practice, "P", "only this practice's tasks")
      ->check(PracticeId());
  AddFlag(*exp, "--from", flags.from, "POSITION",
          "export the events from this position on (default 1)", 0);
  AddMasterKeyFlag(*exp, flags.master_key_file);
  return exp;
}

CLI::App* AddRebuild(CLI::App& app, RebuildFlags& flags) {
  CLI::App* rebuild = app.add_subcommand("rebuild", "rebuild projections and indexes from the log");
  Describe(
      *rebuild,
      "Deletes every projection and index row in DIR and folds them again from the log alone,\n"
      "reporting progress and the rate (events/s) on stderr, then checks the result against the\n"
      "log. Needs the directory to itself: stop outreachd, or work on a copy.");
  AddFlag(*rebuild, "--db", flags.db, "DIR", "the data directory")->required();
  return rebuild;
}

CLI::App* AddBackup(CLI::App& app, BackupFlags& flags) {
  CLI::App* backup = app.add_subcommand("backup", "back up a data directory, or a live server");
  Describe(
      *backup,
      "Offline (--db --to): adds a consistent backup of DIR to the backup directory DIR2\n"
      "(RocksDB BackupEngine: files are checksummed, and unchanged ones are shared between\n"
      "backups), then verifies it. Needs the directory to itself: stop outreachd first.\n"
      "Live (--server): asks a running outreachd (AdminService.CreateBackup, admin role) to add a\n"
      "verified backup to its own --backup-dir while it keeps serving; it keeps its newest\n"
      "--backup-keep backups. Restore either kind with `outreachctl restore`.");
  CLI::Option* db = AddFlag(*backup, "--db", flags.db, "DIR", "the data directory (offline)");
  CLI::Option* to =
      AddFlag(*backup, "--to", flags.to, "DIR2", "the backup directory (offline; created if "
              "missing)");
  CLI::Option* server = AddFlag(*backup, "--server", flags.server, "HOST:PORT",
                                "a running outreachd to back up live (into its --backup-dir)");
  CLI::Option* token = AddFlag(*backup, "--token-file", flags.token_file, "FILE",
                               "file holding an admin principal's bearer token (--server)");
  CLI::Option* ca = AddFlag(*backup, "--tls-ca", flags.tls_ca, "PEM",
                            "CA certificate to verify the server's TLS with (--server; absent: "
                            "plaintext)");
  db->needs(to);
  to->needs(db);
  server->excludes(db)->excludes(to);
  token->needs(server);
  ca->needs(server);
  backup->require_option(1, 0);  // --db --to, or --server
  return backup;
}

CLI::App* AddRestore(CLI::App& app, RestoreFlags& flags) {
  CLI::App* restore =
      app.add_subcommand("restore", "restore the latest backup into a new data directory");
  Describe(*restore,
           "Restores the latest backup in DIR2 into DIR3, which must not exist or be empty, then\n"
           "verifies the restored log and projections and prints its head position and hash.");
  // The one directory that must already exist: a mistyped backup directory is bad usage.
  AddFlag(*restore, "--from", flags.from, "DIR2", "the backup directory (an existing one)")
      ->required()
      ->check(CLI::ExistingDirectory.description(""));
  AddFlag(*restore, "--db", flags.db, "DIR3", "the new data directory")->required();
  CLI::Option* list = AddFlag(
      *restore, "--erasure-list", flags.erasure_list, "FILE",
      "outreachd's --erasure-list: patients erased after the backup are erased again")
      ->check(CLI::ExistingFile.description(""));
  AddMasterKeyFlag(*restore, flags.master_key_file)->needs(list);
  list->needs("--master-key-file");
  return restore;
}

CLI::App* AddRotateMasterKey(CLI::App& app, RotateMasterKeyFlags& flags) {
  CLI::App* rotate = app.add_subcommand(
      "rotate-master-key", "re-wrap an encrypted database's keys under a new master key");
  Describe(*rotate,
           "Re-wraps every data key and the pseudonym key of the encrypted database in DIR from\n"
           "the master key in --master-key-file to the one in --new-master-key-file, in one\n"
           "synced batch, then compacts so that the old wrapping leaves the files. The log is\n"
           "not touched (its hashes stay). Needs the directory to itself: stop outreachd, then\n"
           "start it with the new file and destroy the old one.");
  AddFlag(*rotate, "--db", flags.db, "DIR", "the data directory")->required();
  AddFlag(*rotate, "--master-key-file", flags.master_key_file, "FILE", "the current master key")
      ->required()
      ->check(CLI::ExistingFile.description(""));
  AddFlag(*rotate, "--new-master-key-file", flags.new_master_key_file, "FILE",
          "the new master key (32 random bytes, mode 0600)")
      ->required()
      ->check(CLI::ExistingFile.description(""));
  return rotate;
}

// "outreachctl verify: <what>", naming the subcommand when the error is within one.
int UsageError(const CLI::App& app, const CLI::ParseError& error) {
  std::string name = app.get_name();
  std::string what = error.what();
  if (const std::vector<CLI::App*> subcommands = app.get_subcommands(); !subcommands.empty()) {
    absl::StrAppend(&name, " ", subcommands.front()->get_name());
  } else if (const std::vector<std::string> extra = app.remaining(); !extra.empty()) {
    // CLI11 would only say that a subcommand is required.
    what = absl::StartsWith(extra.front(), "-")
               ? absl::StrCat("unknown flag ", extra.front())
               : absl::StrCat("unknown command \"", extra.front(), "\"");
  }
  std::fprintf(stderr, "%s: %s\nrun '%s --help' for usage\n", name.c_str(), what.c_str(),
               name.c_str());
  return kExitUsage;
}

}  // namespace

ParsedCommandLine ParseCommandLine(int argc, char** argv) {
  CLI::App app(
      "Inspects and maintains an outreach data directory, offline or beside a running outreachd.",
      "outreachctl");
  app.footer(
      absl::StrCat("'outreachctl COMMAND --help' describes a command's flags.\n", kExitCodes));
  app.require_subcommand(1);
  VerifyFlags verify;
  ExportFlags exp;
  ExportFhirFlags export_fhir;
  RebuildFlags rebuild;
  BackupFlags backup;
  RestoreFlags restore;
  RotateMasterKeyFlags rotate;
  ParsedCommandLine parsed;
  // A subcommand's callback runs once its flags are parsed and every check has passed.
  AddVerify(app, verify)->callback([&] { parsed.command = verify; });
  AddExport(app, exp)->callback([&] { parsed.command = exp; });
  AddExportFhir(app, export_fhir)->callback([&] { parsed.command = export_fhir; });
  AddRebuild(app, rebuild)->callback([&] { parsed.command = rebuild; });
  AddBackup(app, backup)->callback([&] { parsed.command = backup; });
  AddRestore(app, restore)->callback([&] { parsed.command = restore; });
  AddRotateMasterKey(app, rotate)->callback([&] { parsed.command = rotate; });
  if (argc == 2 && std::string(argv[1]) == "help") {
    std::fputs(app.help().c_str(), stdout);
    return parsed;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& help) {
    parsed.exit_code = app.exit(help, std::cout, std::cerr);
  } catch (const CLI::ParseError& error) {
    parsed.command.reset();
    parsed.exit_code = UsageError(app, error);
  }
  return parsed;
}

}  // namespace outreach::ctl
