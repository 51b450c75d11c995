// outreachd: the outreach task service. The composition root: flags -> store -> server ->
// recovery (close tasks that expired while down) -> SERVING -> expiry scheduler -> wait for
// SIGTERM/SIGINT -> drain -> close.
//
// Security (README "Security"): --tls-cert/--tls-key serve TLS, --tls-client-ca requires and
// verifies client certificates (mTLS); --principals names the principals file (server/auth.h),
// re-read on SIGHUP (a bad file keeps the previous principals and logs why).
// --practice-time-zones names the file of per-practice zones (server/practice_zones_file.h),
// re-read on SIGHUP likewise; practices it does not list take "today" in --time-zone. Without
// --principals the server runs in local-development mode, on loopback only. Plaintext off
// loopback needs --insecure-listen and is warned about at every start. Every read of patient
// data is recorded in the access log, whose records older than --access-log-retention are
// deleted at start-up and every hour. Bad security flags exit 2 before the database is opened.
//
// --read-only-investigation: for a database that fails its start-up checks. The store is opened
// read-only without verifying the log (EventStore::OpenReadOnly, verify_on_open = false); the
// server serves reads only (every mutation FAILED_PRECONDITION, TaskService health NOT_SERVING);
// nothing expires. Without the flag such a database stops the start (non-zero exit, naming the
// first bad position).
#include <signal.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/auth.h"
#include "logging/log.h"
#include "server/flag_names.h"
#include "server/metrics.h"
#include "server/practice_zones_file.h"
#include "server/server.h"
#include "server/startup_checks.h"
#include "store/clock.h"
#include "store/event_store.h"
#include "store/expiry_scheduler.h"
#include "store/privacy.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051", "address to serve gRPC on (host:port)");
ABSL_FLAG(std::string, db, "./data", "RocksDB directory (created if missing)");
ABSL_FLAG(std::string, time_zone, "UTC",
          "IANA time zone deciding \"today\" for follow-up dates, for every practice that "
          "--practice-time-zones does not list (also spelled --time-zone)");
ABSL_FLAG(std::string, practice_time_zones, "",
          "file of `practice_id IANA-zone` lines: \"today\" for each listed practice's tasks "
          "(format in README \"Practice time zones\"); re-read on SIGHUP. Absent: every "
          "practice in --time-zone (also spelled --practice-time-zones)");
ABSL_FLAG(bool, read_only_investigation, false,
          "serve a database read-only, without verifying its log at start-up, to investigate "
          "damage: reads, ReadEvents, SubscribeEvents, GetTaskHistory and VerifyLog work; every "
          "write is refused with FAILED_PRECONDITION; no task expires "
          "(also spelled --read-only-investigation)");

ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain to serve TLS with (needs --tls-key; also spelled --tls-cert)");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls-cert (also spelled --tls-key)");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA certificate(s): require and verify client certificates signed by it (mTLS; "
          "needs --tls-cert; also spelled --tls-client-ca)");
ABSL_FLAG(std::string, principals, "",
          "principals file (ids, roles, token SHA-256s, certificate subjects; format in README "
          "\"Security\"); re-read on SIGHUP. Absent: local-development mode, loopback only");
ABSL_FLAG(bool, insecure_listen, false,
          "allow plaintext (no TLS) on a non-loopback --listen; warned about at every start "
          "(also spelled --insecure-listen)");
ABSL_FLAG(bool, insecure_db_permissions, false,
          "serve a --db directory that group or others may access (refused otherwise: it holds "
          "call notes and the access log; also spelled --insecure-db-permissions)");
ABSL_FLAG(std::string, access_log_retention, "6y",
          "how long access records are kept: 6y, 30d, 12h, 90m, 45s, or 0 for ever "
          "(also spelled --access-log-retention)");
ABSL_FLAG(std::string, min_free_disk, "auto",
          "free-space reserve: new writes are refused (UNAVAILABLE \"disk almost full\", "
          "TaskService health NOT_SERVING) while the --db file system has less free space than "
          "this, so that compaction, the access log and a clean shutdown keep room; reads go on. "
          "MiB as a whole number (512), 0 for no reserve, or auto = the smaller of 256 MiB and "
          "5% of the file system (also spelled --min-free-disk)");
ABSL_FLAG(int, grpc_memory_limit_mib, 256,
          "memory gRPC may hold for connections and calls (request bytes still arriving, "
          "buffers), in MiB; near it idle connections are closed and calls refused "
          "RESOURCE_EXHAUSTED (also spelled --grpc-memory-limit-mib)");
ABSL_FLAG(absl::Duration, max_connection_idle, absl::Minutes(5),
          "close a connection with no call in flight for this long, e.g. 5m, 30s "
          "(also spelled --max-connection-idle)");
ABSL_FLAG(std::string, metrics_listen, "",
          "host:port to serve Prometheus metrics on (GET /metrics); empty = no metrics "
          "(also spelled --metrics-listen)");
ABSL_FLAG(std::string, log_format, "",
          "text or json: the log on stderr, one record a line; empty = text when stderr is a "
          "terminal, json otherwise (also spelled --log-format)");
ABSL_FLAG(std::string, log_level, "info",
          "debug, info, warning or error: records below it are not written; info includes a "
          "line per RPC (also spelled --log-level)");
ABSL_FLAG(std::string, health_listen, "",
          "also serve grpc.health.v1 alone, in plaintext, on this host:port (for probes that "
          "cannot speak TLS, e.g. Kubernetes gRPC probes); absent: none "
          "(also spelled --health-listen)");
ABSL_FLAG(std::string, backup_dir, "",
          "directory that AdminService.CreateBackup (`outreachctl backup --server`) adds live "
          "BackupEngine backups to; absent: live backups are refused (also spelled --backup-dir)");
ABSL_FLAG(std::string, master_key_file, "",
          "file holding the 32-byte master key (mode 0600) that encrypts patients' personal "
          "data so that ErasePatient can destroy it (README \"Privacy\"); absent: a new "
          "database runs in plain mode (also spelled --master-key-file)");
ABSL_FLAG(std::string, erasure_list, "",
          "file (outside --db and its backups) where each ErasePatient is recorded, so that "
          "`outreachctl restore --erasure-list` erases the patient again in an older backup "
          "(README \"Privacy\"; also spelled --erasure-list)");
ABSL_FLAG(uint32_t, backup_keep, 7,
          "live backups kept in --backup-dir: older ones are deleted after each new one "
          "verifies; 0 keeps every one (also spelled --backup-keep)");

namespace {

namespace logging = outreach::logging;

constexpr absl::Duration kDrainDeadline = absl::Seconds(5);

int Fail(absl::string_view what, const absl::Status& status) {
  logging::Error(absl::StrCat(what, ": ", status.ToString()));
  return 1;
}

// Opens the store read-only for investigation: no writer, no start-up verification (the point is
// to look at a database that fails it).
absl::StatusOr<std::unique_ptr<outreach::store::EventStore>> OpenForInvestigation(
    const std::string& db, const std::string& master_key) {
  outreach::store::ReadOnlyOptions options;
  options.verify_on_open = false;
  options.master_key = master_key;
  return outreach::store::EventStore::OpenReadOnly(db, options);
}

int Refuse(absl::string_view why) {
  logging::Error(absl::StrCat("refusing to start: ", why));
  return 2;
}

absl::StatusOr<std::string> ReadPemFile(absl::string_view flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (in) text << in.rdbuf();
  if (!in || in.bad() || text.str().empty()) {
    return absl::FailedPreconditionError(
        absl::StrFormat("--%s: cannot read \"%s\" (or it is empty)", flag, path));
  }
  return text.str();
}

// The transport credentials the TLS flags ask for: nullptr for plaintext.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> TransportCredentials() {
  const std::string cert = absl::GetFlag(FLAGS_tls_cert);
  const std::string key = absl::GetFlag(FLAGS_tls_key);
  const std::string client_ca = absl::GetFlag(FLAGS_tls_client_ca);
  if (cert.empty() != key.empty()) {
    return absl::FailedPreconditionError("--tls-cert and --tls-key go together: give both");
  }
  if (cert.empty()) {
    if (!client_ca.empty()) {
      return absl::FailedPreconditionError("--tls-client-ca needs --tls-cert and --tls-key");
    }
    return std::shared_ptr<grpc::ServerCredentials>();
  }
  outreach::server::TlsPem pem;
  absl::StatusOr<std::string> text = ReadPemFile("tls-cert", cert);
  if (!text.ok()) return text.status();
  pem.cert_chain = *std::move(text);
  text = ReadPemFile("tls-key", key);
  if (!text.ok()) return text.status();
  pem.private_key = *std::move(text);
  // gRPC would only find out when it builds the server, after the database is open.
  if (absl::Status s = outreach::server::CheckKeyMatchesCertificate(pem.cert_chain,
                                                                     pem.private_key);
      !s.ok()) {
    return s;
  }
  if (!client_ca.empty()) {
    text = ReadPemFile("tls-client-ca", client_ca);
    if (!text.ok()) return text.status();
    pem.client_ca = *std::move(text);
  }
  return outreach::server::TlsCredentials(pem);
}

// Everything the flags say, checked before the database is opened: a start that would be unsafe
// or cannot work stops here (exit 2).
struct Config {
  std::shared_ptr<grpc::ServerCredentials> credentials;  // nullptr: plaintext
  outreach::server::ListenSecurity listen;
  std::unique_ptr<outreach::server::PrincipalRegistry> principals;  // nullptr: development mode
  absl::Duration retention;
  std::optional<uint64_t> min_free_disk;
  std::string db;
  absl::TimeZone time_zone;
  // --practice-time-zones: the file (empty = none) and the zones the writer decides with.
  std::string practice_zones_path;
  std::shared_ptr<outreach::store::PracticeZoneTable> practice_zones;
  bool read_only = false;
  std::string master_key;  // --master-key-file's 32 bytes; empty: none given
  // --metrics-listen: nullptr when off. Started before the store opens, so that a rebuild at
  // start-up shows its progress.
  std::unique_ptr<outreach::server::Metrics> metrics;
};

// --log-format and --log-level: the process's log, before anything is logged.
absl::Status ConfigureLogging() {
  absl::StatusOr<logging::Format> format = logging::ParseFormat(absl::GetFlag(FLAGS_log_format));
  if (!format.ok()) return format.status();
  absl::StatusOr<logging::Level> level = logging::ParseLevel(absl::GetFlag(FLAGS_log_level));
  if (!level.ok()) return level.status();
  logging::Configure({.program = "outreachd", .format = *format, .level = *level});
  return absl::OkStatus();
}

// Stops the metrics reading the store and the server when it goes out of scope: declared after
// both, it goes first, on every return path.
class MetricsWatchEnd {
 public:
  explicit MetricsWatchEnd(outreach::server::Metrics* metrics) : metrics_(metrics) {}
  MetricsWatchEnd(const MetricsWatchEnd&) = delete;
  MetricsWatchEnd& operator=(const MetricsWatchEnd&) = delete;
  ~MetricsWatchEnd() {
    if (metrics_ != nullptr) metrics_->Unwatch();
  }

 private:
  outreach::server::Metrics* const metrics_;
};

// --metrics-listen: serves /metrics from now on (UNAVAILABLE if it cannot bind).
absl::Status StartMetrics(Config& config) {
  const std::string listen = absl::GetFlag(FLAGS_metrics_listen);
  if (listen.empty()) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<outreach::server::Metrics>> metrics =
      outreach::server::Metrics::Start(listen, config.db);
  if (!metrics.ok()) return metrics.status();
  config.metrics = *std::move(metrics);
  logging::Info(absl::StrCat("metrics on http://", config.metrics->address(), "/metrics"),
                {{"metrics_address", config.metrics->address()}});
  return absl::OkStatus();
}

// Opens the store for normal service: verified, with a writer.
absl::StatusOr<std::unique_ptr<outreach::store::EventStore>> OpenForService(
    const Config& config, outreach::store::Clock* clock) {
  outreach::store::StoreOptions options;
  options.time_zone = config.time_zone;
  options.practice_zones = config.practice_zones;
  options.clock = clock;
  options.access_log.retention = config.retention;
  options.min_free_disk_bytes = config.min_free_disk;
  options.master_key = config.master_key;
  if (config.metrics != nullptr) options.observer = config.metrics->store_observer();
  return outreach::store::EventStore::Open(config.db, options);
}

void ParseFlags(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "outreachd --listen=127.0.0.1:50051 --db=./data --time-zone=UTC "
      "[--practice-time-zones=FILE] [--principals=FILE] "
      "[--tls-cert=PEM --tls-key=PEM [--tls-client-ca=PEM]] "
      "[--insecure-listen] [--insecure-db-permissions] [--access-log-retention=6y] "
      "[--min-free-disk=auto] [--grpc-memory-limit-mib=256] [--max-connection-idle=5m] "
      "[--read-only-investigation] [--backup-dir=DIR [--backup-keep=7]] "
      "[--master-key-file=FILE [--erasure-list=FILE]] "
      "[--health-listen=HOST:PORT] [--metrics-listen=127.0.0.1:9464] "
      "[--log-format=text|json] [--log-level=info]\n"
      "Serves the outreach task service (outreach.v1.TaskService, outreach.v1.EventLog) over "
      "gRPC.");
  std::vector<std::string> normalized = outreach::server::NormalizeFlagNames(argc, argv);
  std::vector<char*> normalized_argv;
  for (std::string& arg : normalized) normalized_argv.push_back(arg.data());
  absl::ParseCommandLine(static_cast<int>(normalized_argv.size()), normalized_argv.data());
}

// The stop and reload signals, blocked before any thread starts: every thread inherits the mask,
// and only the main thread's sigwait sees them.
sigset_t BlockSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);  // re-read --principals and --practice-time-zones
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

// The security flags: transport, where it may listen, and who may call.
absl::Status ReadSecurity(Config& config) {
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials = TransportCredentials();
  if (!credentials.ok()) return credentials.status();
  config.credentials = *std::move(credentials);
  const std::string principals_path = absl::GetFlag(FLAGS_principals);
  config.listen.listen_address = absl::GetFlag(FLAGS_listen);
  config.listen.tls = config.credentials != nullptr;
  config.listen.insecure_listen = absl::GetFlag(FLAGS_insecure_listen);
  config.listen.principals = !principals_path.empty();
  if (absl::Status s = outreach::server::CheckListenSecurity(config.listen); !s.ok()) return s;
  if (principals_path.empty()) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<outreach::server::PrincipalRegistry>> loaded =
      outreach::server::PrincipalRegistry::Load(principals_path);
  if (!loaded.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("--principals: ", loaded.status().message()));
  }
  config.principals = *std::move(loaded);
  return absl::OkStatus();
}

// --practice-time-zones: a file that cannot be read or does not parse stops the start.
absl::Status ReadPracticeZones(Config& config) {
  config.practice_zones_path = absl::GetFlag(FLAGS_practice_time_zones);
  if (config.practice_zones_path.empty()) return absl::OkStatus();
  absl::StatusOr<outreach::domain::PracticeZones> zones =
      outreach::server::LoadPracticeZones(config.practice_zones_path);
  if (!zones.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("--practice-time-zones: ", zones.status().message()));
  }
  logging::Info(absl::StrFormat("--practice-time-zones %s: %d practice(s); others in %s",
                                config.practice_zones_path, zones->size(),
                                absl::GetFlag(FLAGS_time_zone)));
  config.practice_zones =
      std::make_shared<outreach::store::PracticeZoneTable>(*std::move(zones));
  return absl::OkStatus();
}

// The rest of the flags, and the database directory (created private, or refused when others
// can read it).
absl::Status ReadStorage(Config& config) {
  absl::StatusOr<absl::Duration> retention =
      outreach::server::ParseRetention(absl::GetFlag(FLAGS_access_log_retention));
  if (!retention.ok()) return retention.status();
  config.retention = *retention;
  absl::StatusOr<std::optional<uint64_t>> min_free_disk =
      outreach::server::ParseMinFreeDisk(absl::GetFlag(FLAGS_min_free_disk));
  if (!min_free_disk.ok()) return min_free_disk.status();
  config.min_free_disk = *min_free_disk;
  const std::string zone_name = absl::GetFlag(FLAGS_time_zone);
  if (!absl::LoadTimeZone(zone_name, &config.time_zone)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("--time-zone: unknown IANA time zone \"%s\"", zone_name));
  }
  if (absl::Status s = ReadPracticeZones(config); !s.ok()) return s;
  config.read_only = absl::GetFlag(FLAGS_read_only_investigation);
  config.db = absl::GetFlag(FLAGS_db);
  if (const std::string path = absl::GetFlag(FLAGS_master_key_file); !path.empty()) {
    absl::StatusOr<std::string> key = outreach::store::ReadMasterKeyFile(path);
    if (!key.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--master-key-file: ", key.status().message()));
    }
    config.master_key = *std::move(key);
  }
  return outreach::server::PrepareDbDirectory(config.db,
                                              absl::GetFlag(FLAGS_insecure_db_permissions));
}

// Says how callers are authenticated and how the transport is protected.
void LogSecurity(const Config& config) {
  const bool mtls = !absl::GetFlag(FLAGS_tls_client_ca).empty();
  if (config.principals != nullptr) {
    logging::Info(absl::StrFormat(
        "--principals %s: %d principal(s); bearer tokens%s; every RPC checked against the role "
        "table; SIGHUP re-reads the file",
        config.principals->path(), config.principals->Current()->size(),
        mtls ? " and client certificates" : ""));
  } else {
    logging::Info(
        "no --principals: local development mode, loopback only, actor anonymous or x-actor "
        "(every caller holds every role)");
  }
  if (config.listen.tls) {
    logging::Info(absl::StrCat(
        "serving TLS",
        mtls ? " and requiring client certificates from --tls-client-ca (mTLS)" : ""));
  } else if (outreach::server::InsecureListenWarning(config.listen)) {
    logging::Warning(absl::StrFormat(
        "WARNING: --insecure-listen: serving PLAINTEXT on non-loopback address %s: bearer "
        "tokens and patient data cross the network unencrypted. Use --tls-cert and --tls-key.",
        config.listen.listen_address));
  } else {
    logging::Info("plaintext on loopback (no --tls-cert)");
  }
}

void LogReadOnlyWarning(const std::string& db) {
  logging::Warning(absl::StrFormat(
      "****************************************************************\n"
      "WARNING: READ-ONLY INVESTIGATION MODE (--read-only-investigation)\n"
      "database %s opened read-only WITHOUT verifying its log.\n"
      "Every write is refused (FAILED_PRECONDITION), TaskService health is\n"
      "NOT_SERVING, and no task expires. Not for normal service: find the\n"
      "damage with VerifyLog or `outreachctl verify --db %s`.\n"
      "Reads are NOT recorded in the access log (the database is read-only);\n"
      "each one is written to this log instead (\"access ...\").\n"
      "****************************************************************",
      db, db));
}

// Opens the store as the flags say; on failure logs why (and, for damage, how to look at it)
// and returns the exit code.
absl::StatusOr<std::unique_ptr<outreach::store::EventStore>> OpenStore(
    const Config& config, outreach::store::Clock* clock, int* exit_code) {
  absl::StatusOr<std::unique_ptr<outreach::store::EventStore>> store =
      config.read_only
          ? OpenForInvestigation(config.db, config.master_key)
          : OpenForService(config, clock);
  if (!store.ok() && absl::IsFailedPrecondition(store.status())) {
    // A setting that does not fit the database (its master key): like a bad flag.
    *exit_code = Refuse(absl::StrFormat("database \"%s\": %s", config.db,
                                        store.status().message()));
    return store;
  }
  if (!store.ok()) {
    *exit_code = Fail(absl::StrFormat("cannot open database \"%s\"%s", config.db,
                                      config.read_only ? " read-only" : ""),
                      store.status());
    if (!config.read_only && absl::IsDataLoss(store.status())) {
      // Damage stops the start; say how to look at it without changing it.
      logging::Error(absl::StrFormat(
          "the database failed its integrity checks and will not be served.\n"
          "`outreachctl verify --db %s` checks the whole log offline and names the first bad "
          "position;\n"
          "`outreachd --db=%s --read-only-investigation` serves it read-only (writes refused) "
          "for investigation.",
          config.db, config.db));
    }
    return store;
  }
  if (config.read_only) LogReadOnlyWarning(config.db);
  if ((*store)->encrypted()) {
    logging::Info("personal data encrypted per patient under --master-key-file; ErasePatient "
                  "destroys a patient's key (README \"Privacy\")",
                  {{"privacy", "encrypted"}});
  } else {
    logging::Warning("plain mode: personal data (titles, notes, patient ids) is stored "
                     "unencrypted and patients cannot be erased; a new database started with "
                     "--master-key-file is encrypted (README \"Privacy\")",
                     {{"privacy", "plain"}});
  }
  logging::Info(absl::StrFormat("database %s opened%s, head position %d", config.db,
                                config.read_only ? " read-only" : "", (*store)->HeadPosition()),
                {{"head_position", (*store)->HeadPosition()}});
  return store;
}

absl::StatusOr<std::unique_ptr<outreach::server::OutreachServer>> StartServer(
    const Config& config, outreach::store::EventStore* store) {
  outreach::server::ServerOptions options;
  options.listen_address = config.listen.listen_address;
  options.read_only_investigation = config.read_only;
  options.credentials = config.credentials;
  options.principals = config.principals.get();
  options.memory_quota_bytes =
      static_cast<std::size_t>(std::max(1, absl::GetFlag(FLAGS_grpc_memory_limit_mib))) << 20;
  options.max_connection_idle = absl::GetFlag(FLAGS_max_connection_idle);
  options.health_listen_address = absl::GetFlag(FLAGS_health_listen);
  options.backup_dir = absl::GetFlag(FLAGS_backup_dir);
  options.backup_keep = absl::GetFlag(FLAGS_backup_keep);
  options.erasure_list = absl::GetFlag(FLAGS_erasure_list);
  if (config.metrics != nullptr) options.rpc_metrics = config.metrics->rpc();
  absl::StatusOr<std::unique_ptr<outreach::server::OutreachServer>> server =
      outreach::server::OutreachServer::Start(options, store);
  if (server.ok() && config.metrics != nullptr) config.metrics->Watch(store, server->get());
  return server;
}

// Recovery (tasks that expired while the service was down close before anyone is served), then
// SERVING and the expiry scheduler. A read-only server writes nothing: no recovery, no
// scheduler (returns nullptr).
absl::StatusOr<std::unique_ptr<outreach::store::ExpiryScheduler>> GoLive(
    const Config& config, outreach::store::EventStore* store, outreach::store::Clock* clock,
    outreach::server::OutreachServer* server) {
  if (config.read_only) {
    server->SetServing(true);
    logging::Info(absl::StrFormat("serving READ-ONLY on %s (time zone %s)", server->address(),
                                  config.time_zone.name()),
                  {{"address", server->address()}});
    return nullptr;
  }
  absl::StatusOr<int> expired = ExpireDue(*store, clock->Now());
  if (!expired.ok()) return expired.status();
  server->SetServing(true);
  auto scheduler = std::make_unique<outreach::store::ExpiryScheduler>(store, clock);
  logging::Info(absl::StrFormat("serving on %s (time zone %s; %d task(s) expired while down)",
                                server->address(), config.time_zone.name(), *expired),
                {{"address", server->address()}});
  return scheduler;
}

// SIGHUP, on the main thread (never in a signal handler: Reload reads a file and locks).
void ReloadPrincipals(outreach::server::PrincipalRegistry* principals,
                      outreach::server::OutreachServer* server) {
  if (principals == nullptr) {
    logging::Info("SIGHUP: no --principals to re-read (development mode)");
    return;
  }
  if (absl::Status s = principals->Reload(); !s.ok()) {
    logging::Error(absl::StrCat("SIGHUP: principals NOT reloaded: ", s.ToString()));
    return;
  }
  logging::Info(absl::StrFormat("SIGHUP: principals reloaded from %s: %d principal(s)",
                                principals->path(), principals->Current()->size()));
  // Open streams of principals that are gone or lost the role end now, not at their next event.
  server->PrincipalsReloaded();
}

// SIGHUP, on the main thread: the zones file again. A bad file keeps the zones in use. The
// writer takes the new map for the next command it decides (store/practice_zones.h).
void ReloadPracticeZones(const Config& config) {
  if (config.practice_zones == nullptr) return;
  absl::StatusOr<outreach::domain::PracticeZones> zones =
      outreach::server::LoadPracticeZones(config.practice_zones_path);
  if (!zones.ok()) {
    logging::Error(absl::StrCat(
        "SIGHUP: practice time zones NOT reloaded (keeping the previous ones): ",
        zones.status().ToString()));
    return;
  }
  const std::size_t count = zones->size();
  config.practice_zones->Replace(*std::move(zones));
  logging::Info(absl::StrFormat("SIGHUP: practice time zones reloaded from %s: %d practice(s)",
                                config.practice_zones_path, count));
}

// Serves until SIGTERM or SIGINT (returned), reloading the principals and the practice time
// zones on each SIGHUP.
int WaitForStop(const sigset_t& signals, const Config& config,
                outreach::server::OutreachServer* server) {
  int signal_number = 0;
  while (true) {
    sigwait(&signals, &signal_number);
    if (signal_number != SIGHUP) return signal_number;
    ReloadPrincipals(config.principals.get(), server);
    ReloadPracticeZones(config);
  }
}

}  // namespace

int main(int argc, char** argv) {
  ParseFlags(argc, argv);
  if (absl::Status s = ConfigureLogging(); !s.ok()) {
    absl::FPrintF(stderr, "outreachd: refusing to start: %s\n", s.message());
    return 2;
  }
  // Everything this process creates (the database's directories and files, RocksDB's logs) is
  // its own only: 0700 directories, 0600 files, whatever the caller's umask.
  umask(077);
  // Debian's Abseil checks every mutex acquisition for lock-order cycles (about 1.5% of the
  // writer thread's time under load). The sanitizer and unit-test builds keep the check.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  const sigset_t signals = BlockSignals();

  // Flags first: a server that would be unsafe, or cannot work, does not open the database.
  Config config;
  if (absl::Status s = ReadSecurity(config); !s.ok()) return Refuse(s.message());
  if (absl::Status s = ReadStorage(config); !s.ok()) return Refuse(s.message());
  LogSecurity(config);
  if (absl::Status s = StartMetrics(config); !s.ok()) return Refuse(s.message());

  outreach::store::Clock* clock = outreach::store::Clock::Real();
  int exit_code = 0;
  absl::StatusOr<std::unique_ptr<outreach::store::EventStore>> store =
      OpenStore(config, clock, &exit_code);
  if (!store.ok()) return exit_code;
  absl::StatusOr<std::unique_ptr<outreach::server::OutreachServer>> server =
      StartServer(config, store->get());
  if (!server.ok()) return Fail("cannot start server", server.status());
  const MetricsWatchEnd metrics_watch_end(config.metrics.get());
  absl::StatusOr<std::unique_ptr<outreach::store::ExpiryScheduler>> scheduler =
      GoLive(config, store->get(), clock, server->get());
  if (!scheduler.ok()) return Fail("cannot close expired tasks", scheduler.status());

  const int stop = WaitForStop(signals, config, server->get());
  logging::Info(absl::StrCat(stop == SIGTERM ? "SIGTERM" : "SIGINT", " received, draining"));
  (*server)->Shutdown(kDrainDeadline);
  if (*scheduler != nullptr) (*scheduler)->Stop();
  if (config.metrics != nullptr) config.metrics->Unwatch();  // before what it reads goes
  server->reset();
  store->reset();
  logging::Info("stopped");
  return 0;
}
