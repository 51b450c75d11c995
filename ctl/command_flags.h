// outreachctl's command line: the subcommands, their flags and help, which flags are required and
// what values each accepts, declared with CLI11 (Debian's libcli11-dev). Parsing yields one
// Command, a struct of already-checked values; outreachctl.cc runs it. absl flags do not fit here:
// they are process-global, while each subcommand accepts a different set.
//
// Plain value types and a pure function of argv (apart from printing help or the usage error);
// no global state.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <variant>

namespace outreach::ctl {

// outreachctl's exit codes (README "Audit"): 0 only on success.
constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;  // the command ran and something failed; the message says what
constexpr int kExitUsage = 2;   // bad usage; nothing was run

struct VerifyFlags {
  std::string db;
  uint64_t to = 0;          // 0: through the head
  std::string expect_hash;  // empty, or 64 hex digits
};

struct ExportFlags {
  std::string db;
  uint64_t from = 1;
  std::string task;  // empty: every task
  std::string master_key_file;  // an encrypted database's key (README "Privacy"); empty: none
};

// FHIR R4 Bulk Data NDJSON files (ctl/export_fhir.h).
struct ExportFhirFlags {
  std::string db;
  std::string out;       // the directory the files go to (created if missing)
  std::string practice;  // empty: every practice
  uint64_t from = 1;     // 0 reads as 1
  std::string master_key_file;  // an encrypted database's key; empty: none
};

struct RebuildFlags {
  std::string db;
};

// Either offline (db and to) or live (server: AdminService.CreateBackup on a running outreachd,
// which writes into its own --backup-dir).
struct BackupFlags {
  std::string db;
  std::string to;
  std::string server;      // host:port; set: a live backup
  std::string token_file;  // the admin principal's bearer token (first line); empty: none sent
  std::string tls_ca;      // PEM CA to verify the server's TLS certificate; empty: plaintext
};

struct RestoreFlags {
  std::string from;
  std::string db;
  std::string master_key_file;  // with erasure_list: an encrypted database's key
  std::string erasure_list;     // outreachd's --erasure-list: erasures to apply again
};

// Re-wraps an encrypted database's keys under a new master key (store/privacy.h).
struct RotateMasterKeyFlags {
  std::string db;
  std::string master_key_file;
  std::string new_master_key_file;
};

// One alternative per subcommand, in the order `outreachctl --help` lists them.
using Command = std::variant<VerifyFlags, ExportFlags, ExportFhirFlags, RebuildFlags, BackupFlags,
                             RestoreFlags, RotateMasterKeyFlags>;

struct ParsedCommandLine {
  std::optional<Command> command;  // set: run it
  int exit_code = kExitOk;         // unset command: kExitOk after printing help to stdout,
                                   // kExitUsage after printing what is wrong to stderr
};

ParsedCommandLine ParseCommandLine(int argc, char** argv);

}  // namespace outreach::ctl
