// outreachd: the outreach task service. The composition root: flags -> store -> server ->
// recovery (close tasks that expired while down) -> SERVING -> expiry scheduler -> wait for
// SIGTERM/SIGINT -> drain -> close.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

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

namespace {

constexpr absl::Duration kDrainDeadline = absl::Seconds(5);

// absl flag names are identifiers, while the documented spelling is --time-zone: accept dashes
// in flag names by rewriting them to underscores (only the name, never the value).
std::vector<std::string> NormalizeFlagNames(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (std::size_t i = 1; i < args.size(); ++i) {
    std::string& arg = args[i];
    if (arg == "--") break;
    if (arg.size() < 3 || arg[0] != '-') continue;
    const std::size_t start = arg[1] == '-' ? 2 : 1;
    const std::size_t end = std::min(arg.find('='), arg.size());
    for (std::size_t j = start; j < end; ++j) {
      if (arg[j] == '-') arg[j] = '_';
    }
  }
  return args;
}

int Fail(absl::string_view what, const absl::Status& status) {
  absl::FPrintF(stderr, "outreachd: %s: %s\n", what, status.ToString());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "outreachd --listen=127.0.0.1:50051 --db=./data --time-zone=UTC\n"
      "Serves the outreach task service (outreach.v1.TaskService, outreach.v1.EventLog) over gRPC.");
  std::vector<std::string> normalized = NormalizeFlagNames(argc, argv);
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
  // RocksDB creates only the last directory of the path; --db=/srv/outreach/data should just work.
  std::error_code mkdir_error;
  std::filesystem::create_directories(db, mkdir_error);
  if (mkdir_error) {
    absl::FPrintF(stderr, "outreachd: --db: cannot create \"%s\": %s\n", db,
                  mkdir_error.message());
    return 1;
  }
  outreach::store::StoreOptions store_options;
  store_options.time_zone = time_zone;
  store_options.clock = clock;
  absl::StatusOr<std::unique_ptr<outreach::store::EventStore>> store =
      outreach::store::EventStore::Open(db, store_options);
  if (!store.ok()) return Fail(absl::StrFormat("cannot open database \"%s\"", db), store.status());
  absl::FPrintF(stderr, "outreachd: database %s opened, head position %d\n", db,
                (*store)->HeadPosition());

  outreach::server::ServerOptions server_options;
  server_options.listen_address = absl::GetFlag(FLAGS_listen);
  absl::StatusOr<std::unique_ptr<outreach::server::OutreachServer>> server =
      outreach::server::OutreachServer::Start(server_options, store->get());
  if (!server.ok()) return Fail("cannot start server", server.status());

  // Recovery: tasks that expired while the service was down close before anyone is served.
  absl::StatusOr<int> expired = (*store)->ExpireDue(clock->Now());
  if (!expired.ok()) return Fail("cannot close expired tasks", expired.status());
  (*server)->SetServing(true);
  outreach::store::ExpiryScheduler scheduler(store->get(), clock);
  absl::FPrintF(stderr,
                "outreachd: serving on %s (time zone %s; %d task(s) expired while down)\n",
                (*server)->address(), time_zone.name(), *expired);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  absl::FPrintF(stderr, "outreachd: %s received, draining\n",
                signal_number == SIGTERM ? "SIGTERM" : "SIGINT");
  (*server)->Shutdown(kDrainDeadline);
  scheduler.Stop();
  server->reset();
  store->reset();
  absl::FPrintF(stderr, "outreachd: stopped\n");
  return 0;
}
