// outreachd: the outreach task service. The composition root: flags -> store -> server ->
// recovery (close tasks that expired while down) -> SERVING -> expiry scheduler -> wait for
// SIGTERM/SIGINT -> drain -> close.
//
// --read-only-investigation: for a database that fails its start-up checks. The store is opened
// read-only without verifying the log (EventStore::OpenReadOnly, verify_on_open = false); the
// server serves reads only (every mutation FAILED_PRECONDITION, TaskService health NOT_SERVING);
// nothing expires. Without the flag such a database stops the start (non-zero exit, naming the
// first bad position).
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "server/flag_names.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/server.h"
#include "store/clock.h"
#include "store/event_store.h"
#include "store/expiry_scheduler.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051", "address to serve gRPC on (host:port)");
ABSL_FLAG(std::string, db, "./data", "RocksDB directory (created if missing)");
ABSL_FLAG(std::string, time_zone, "UTC",
          "IANA time zone deciding \"today\" for follow-up dates (also spelled --time-zone)");
ABSL_FLAG(bool, read_only_investigation, false,
          "serve a database read-only, without verifying its log at start-up, to investigate "
          "damage: reads, ReadEvents, SubscribeEvents, GetTaskHistory and VerifyLog work; every "
          "write is refused with FAILED_PRECONDITION; no task expires "
          "(also spelled --read-only-investigation)");

namespace {

constexpr absl::Duration kDrainDeadline = absl::Seconds(5);

int Fail(absl::string_view what, const absl::Status& status) {
  absl::FPrintF(stderr, "outreachd: %s: %s\n", what, status.ToString());
  return 1;
}

// Opens the store for normal service: verified, with a writer.
absl::StatusOr<std::unique_ptr<outreach::store::EventStore>> OpenForService(
    const std::string& db, absl::TimeZone time_zone, outreach::store::Clock* clock) {
  // RocksDB creates only the last directory of the path; --db=/srv/outreach/data should just work.
  std::error_code mkdir_error;
  std::filesystem::create_directories(db, mkdir_error);
  if (mkdir_error) {
    return absl::FailedPreconditionError(
        absl::StrFormat("--db: cannot create \"%s\": %s", db, mkdir_error.message()));
  }
  outreach::store::StoreOptions options;
  options.time_zone = time_zone;
  options.clock = clock;
  return outreach::store::EventStore::Open(db, options);
}

// Opens the store read-only for investigation: no writer, no start-up verification (the point is
// to look at a database that fails it).
absl::StatusOr<std::unique_ptr<outreach::store::EventStore>> OpenForInvestigation(
    const std::string& db) {
  outreach::store::ReadOnlyOptions options;
  options.verify_on_open = false;
  return outreach::store::EventStore::OpenReadOnly(db, options);
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "outreachd --listen=127.0.0.1:50051 --db=./data --time-zone=UTC "
      "[--read-only-investigation]\n"
      "Serves the outreach task service (outreach.v1.TaskService, outreach.v1.EventLog) over gRPC.");
  std::vector<std::string> normalized = outreach::server::NormalizeFlagNames(argc, argv);
  std::vector<char*> normalized_argv;
  for (std::string& arg : normalized) normalized_argv.push_back(arg.data());
  absl::ParseCommandLine(static_cast<int>(normalized_argv.size()), normalized_argv.data());

  // Blocked before any thread starts, so every thread inherits the mask and only sigwait sees them.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  const std::string zone_name = absl::GetFlag(FLAGS_time_zone);
  absl::TimeZone time_zone;
  if (!absl::LoadTimeZone(zone_name, &time_zone)) {
    absl::FPrintF(stderr, "outreachd: --time-zone: unknown IANA time zone \"%s\"\n", zone_name);
    return 2;
  }

  outreach::store::Clock* clock = outreach::store::Clock::Real();
  const std::string db = absl::GetFlag(FLAGS_db);
  const bool read_only = absl::GetFlag(FLAGS_read_only_investigation);
  absl::StatusOr<std::unique_ptr<outreach::store::EventStore>> store =
      read_only ? OpenForInvestigation(db) : OpenForService(db, time_zone, clock);
  if (!store.ok()) {
    const int exit_code = Fail(
        absl::StrFormat("cannot open database \"%s\"%s", db, read_only ? " read-only" : ""),
        store.status());
    if (!read_only && absl::IsDataLoss(store.status())) {
      // Damage stops the start; say how to look at it without changing it.
      absl::FPrintF(stderr,
                    "outreachd: the database failed its integrity checks and will not be served.\n"
                    "outreachd: `outreachctl verify --db %s` checks the whole log offline and "
                    "names the first bad position;\n"
                    "outreachd: `outreachd --db=%s --read-only-investigation` serves it read-only "
                    "(writes refused) for investigation.\n",
                    db, db);
    }
    return exit_code;
  }
  if (read_only) {
    absl::FPrintF(
        stderr,
        "outreachd: ****************************************************************\n"
        "outreachd: WARNING: READ-ONLY INVESTIGATION MODE (--read-only-investigation)\n"
        "outreachd: database %s opened read-only WITHOUT verifying its log.\n"
        "outreachd: Every write is refused (FAILED_PRECONDITION), TaskService health is\n"
        "outreachd: NOT_SERVING, and no task expires. Not for normal service: find the\n"
        "outreachd: damage with VerifyLog or `outreachctl verify --db %s`.\n"
        "outreachd: ****************************************************************\n",
        db, db);
  }
  absl::FPrintF(stderr, "outreachd: database %s opened%s, head position %d\n", db,
                read_only ? " read-only" : "", (*store)->HeadPosition());

  outreach::server::ServerOptions server_options;
  server_options.listen_address = absl::GetFlag(FLAGS_listen);
  server_options.read_only_investigation = read_only;
  absl::StatusOr<std::unique_ptr<outreach::server::OutreachServer>> server =
      outreach::server::OutreachServer::Start(server_options, store->get());
  if (!server.ok()) return Fail("cannot start server", server.status());

  // Recovery: tasks that expired while the service was down close before anyone is served.
  // A read-only server writes nothing: no recovery, no scheduler.
  int expired = 0;
  if (!read_only) {
    absl::StatusOr<int> closed = (*store)->ExpireDue(clock->Now());
    if (!closed.ok()) return Fail("cannot close expired tasks", closed.status());
    expired = *closed;
  }
  (*server)->SetServing(true);
  std::unique_ptr<outreach::store::ExpiryScheduler> scheduler;
  if (read_only) {
    absl::FPrintF(stderr, "outreachd: serving READ-ONLY on %s (time zone %s)\n",
                  (*server)->address(), time_zone.name());
  } else {
    scheduler = std::make_unique<outreach::store::ExpiryScheduler>(store->get(), clock);
    absl::FPrintF(stderr,
                  "outreachd: serving on %s (time zone %s; %d task(s) expired while down)\n",
                  (*server)->address(), time_zone.name(), expired);
  }

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  absl::FPrintF(stderr, "outreachd: %s received, draining\n",
                signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->Shutdown(kDrainDeadline);
  if (scheduler != nullptr) scheduler->Stop();
  server->reset();
  store->reset();
  absl::FPrintF(stderr, "outreachd: stopped\n");
  return 0;
}
