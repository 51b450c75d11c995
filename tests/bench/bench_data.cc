// outreach-bench-data: the data-size measurements of issue 5 (targets 3, 4, 5, 6, 7), printed as
// one JSON object on stdout (progress and a summary on stderr).
//
//   outreach-bench-data --outreachd=PATH --load=PATH [--tasks=200000] [--events=1000000]
//                       [--large_tasks=2000000] [--list_seconds=5] [--rss_seconds=10]
//
// 1. Builds a log of --events events over --tasks tasks directly through EventStore::Submit:
//    one TaskCreated per task, then LogContact (with a follow-up date, so every task stays open)
//    round-robin until the log holds --events events. Loading runs with sync_writes off: it is
//    setup, not a measurement, and every figure below is taken after the store closed cleanly.
// 2. Rebuild: RebuildProjections on that store, on this thread -> events per second; the
//    projections dumped (DumpProjections) before and after it must be byte-identical.
// 3. In-process ListTasks: the first page of 50 of the default worklist, p50/p99.
// 4. Start-up: outreachd spawned on the directory, from fork to health SERVING (polled every
//    5 ms with a fresh channel), before and after compaction.
// 5. Disk: CompactRange of every column family (the store's own options, read back from the
//    OPTIONS file RocksDB keeps, so compression is what the service writes), then the bytes
//    the directory occupies (st_blocks) against the serialized size of the "events" rows
//    (key + value, as stored, uncompressed).
// 6. The real outreachd on the compacted directory: outreach-load `list` at concurrency 1
//    (--list_seconds), then `mixed` at concurrency 16 (--rss_seconds); peak RSS is outreachd's
//    VmHWM from /proc after both.
// 7. With --large_tasks > 0: a second log of that many open tasks (creates only), the same
//    list measurements on it, then `mixed` as in 6 and outreachd's peak RSS (issue 18 targets
//    6 and 7: list p99 and peak RSS at 2,000,000 tasks).
//
// Scratch directories go under $OUTREACH_BENCH_DIR (default: the system temporary directory)
// and are removed at the end unless --keep. All traffic is to 127.0.0.1.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "rocksdb/convenience.h"
#include "rocksdb/db.h"
#include "rocksdb/env.h"
#include "rocksdb/options.h"
#include "rocksdb/utilities/options_util.h"
#include "store/event_store.h"
#include "tests/bench/bench_support.h"
#include "tests/load/latency_histogram.h"

ABSL_FLAG(std::string, outreachd, "", "the outreachd binary (required)");
ABSL_FLAG(std::string, load, "", "the outreach-load binary (required)");
ABSL_FLAG(uint64_t, tasks, 200000, "tasks in the main log");
ABSL_FLAG(uint64_t, events, 1000000, "events in the main log (at least --tasks)");
ABSL_FLAG(uint64_t, large_tasks, 2000000, "open tasks in the large worklist log; 0 = skip");
ABSL_FLAG(double, list_seconds, 5, "seconds of outreach-load list per worklist size");
ABSL_FLAG(double, rss_seconds, 10, "seconds of outreach-load mixed while watching RSS");
ABSL_FLAG(int, in_process_lists, 2000, "in-process ListTasks calls per worklist size");
ABSL_FLAG(bool, keep, false, "keep the scratch directories");
ABSL_FLAG(int, in_process_reports, 200, "in-process 90-day GetOutreachStats calls");
ABSL_FLAG(bool, stats_only, false,
          "build the main log, measure load, rebuild and the 90-day report, and stop");

namespace outreach::bench {
namespace {

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

void Log(const std::string& line) { absl::FPrintF(stderr, "bench-data: %s\n", line); }

// Builds the main log: `tasks` creates, then contacts round-robin up to `events` events.
absl::Status BuildLog(store::EventStore& store, uint64_t tasks, uint64_t events) {
  const absl::CivilDay follow_up = TomorrowUtc();
  const auto report = [](uint64_t done) { Log(absl::StrCat("  ", done, " commands")); };
  if (absl::Status s = BulkSubmit(store, tasks, 4096,
                                  [&](uint64_t i) {
                                    return CreateCommand(i, follow_up + static_cast<int>(i % 60));
                                  },
                                  report);
      !s.ok()) {
    return s;
  }
  return BulkSubmit(store, events - tasks, 4096,
                    [&](uint64_t i) {
                      return LogContactCommand(TaskId(i % tasks), i,
                                               follow_up + static_cast<int>(i % 60));
                    },
                    report);
}

// First-page ListTasks latencies through the store itself.
struct ListLatency {
  double p50_ms = 0;
  double p99_ms = 0;
};

absl::StatusOr<ListLatency> MeasureListInProcess(const store::EventStore& store, int calls) {
  load::LatencyHistogram histogram;
  store::ListQuery query;
  query.page_size = 50;
  for (int i = 0; i < calls; ++i) {
    const Clock::time_point start = Clock::now();
    absl::StatusOr<store::ListPage> page = store.ListTasks(query);
    const auto nanos =
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
    if (!page.ok()) return page.status();
    if (page->tasks.size() != 50) return absl::InternalError("ListTasks: short first page");
    histogram.Record(static_cast<uint64_t>(nanos));
  }
  return ListLatency{static_cast<double>(histogram.PercentileNanos(0.5)) / 1e6,
                     static_cast<double>(histogram.PercentileNanos(0.99)) / 1e6};
}

// GetOutreachStats over the 90 days up to today (UTC) for practice "default", group NONE,
// through the store itself (issue 16: p99 <= 20 ms at 1M events).
absl::StatusOr<ListLatency> MeasureStatsInProcess(const store::EventStore& store, int calls) {
  load::LatencyHistogram histogram;
  store::StatsQuery query;
  query.practice_ids = {"default"};
  query.to = absl::ToCivilDay(absl::Now(), absl::UTCTimeZone());
  query.from = query.to - 89;
  for (int i = 0; i < calls; ++i) {
    const Clock::time_point start = Clock::now();
    absl::StatusOr<std::vector<v1::OutreachStats>> rows = store.GetOutreachStats(query);
    const auto nanos =
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
    if (!rows.ok()) return rows.status();
    if (rows->size() != 1 || rows->front().contacts() == 0) {
      return absl::InternalError("GetOutreachStats: the report counted no contact");
    }
    histogram.Record(static_cast<uint64_t>(nanos));
  }
  return ListLatency{static_cast<double>(histogram.PercentileNanos(0.5)) / 1e6,
                     static_cast<double>(histogram.PercentileNanos(0.99)) / 1e6};
}

// Sum of key + value sizes of the "events" column family, read with the store closed.
absl::StatusOr<uint64_t> EventBytes(const std::string& dir) {
  rocksdb::DBOptions db_options;
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  rocksdb::ConfigOptions config;
  rocksdb::Status s = rocksdb::LoadLatestOptions(config, dir, &db_options, &families);
  if (!s.ok()) return absl::InternalError(s.ToString());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  s = rocksdb::DB::OpenForReadOnly(db_options, dir, families, &handles, &raw);
  if (!s.ok()) return absl::InternalError(s.ToString());
  std::unique_ptr<rocksdb::DB> db(raw);
  uint64_t bytes = 0;
  for (std::size_t i = 0; i < families.size(); ++i) {
    if (families[i].name != "events") continue;
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), handles[i]));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      bytes += it->key().size() + it->value().size();
    }
    if (!it->status().ok()) return absl::InternalError(it->status().ToString());
  }
  for (rocksdb::ColumnFamilyHandle* handle : handles) db->DestroyColumnFamilyHandle(handle);
  return bytes;
}

// Full compaction of every column family with the options the store wrote the database with.
absl::Status CompactAll(const std::string& dir) {
  rocksdb::DBOptions db_options;
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  rocksdb::ConfigOptions config;
  rocksdb::Status s = rocksdb::LoadLatestOptions(config, dir, &db_options, &families);
  if (!s.ok()) return absl::InternalError(s.ToString());
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  s = rocksdb::DB::Open(db_options, dir, families, &handles, &raw);
  if (!s.ok()) return absl::InternalError(s.ToString());
  std::unique_ptr<rocksdb::DB> db(raw);
  rocksdb::CompactRangeOptions compact;
  compact.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  for (rocksdb::ColumnFamilyHandle* handle : handles) {
    if (s.ok()) s = db->Flush(rocksdb::FlushOptions(), handle);
    if (s.ok()) s = db->CompactRange(compact, handle, nullptr, nullptr);
  }
  for (rocksdb::ColumnFamilyHandle* handle : handles) db->DestroyColumnFamilyHandle(handle);
  if (rocksdb::Status closed = db->Close(); s.ok()) s = closed;
  return s.ok() ? absl::OkStatus() : absl::InternalError(s.ToString());
}

// Bytes the directory occupies on disk (allocated blocks, as du counts them).
uint64_t DiskUsage(const std::string& dir) {
  uint64_t bytes = 0;
  std::error_code error;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(dir, error)) {
    struct stat st;
    if (stat(entry.path().c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      bytes += static_cast<uint64_t>(st.st_blocks) * 512;
    }
  }
  return bytes;
}

int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return 0;
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// One outreachd process on a directory; SIGKILLed by the destructor if still running.
class Daemon {
 public:
  Daemon(std::string binary, std::string db, std::string log_path)
      : binary_(std::move(binary)), db_(std::move(db)), log_path_(std::move(log_path)) {}
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  ~Daemon() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  // Spawns outreachd and waits for SERVING; returns the seconds from fork to SERVING.
  absl::StatusOr<double> StartAndWaitServing(absl::Duration timeout) {
    const int port = FreePort();
    if (port == 0) return absl::UnavailableError("no free loopback port");
    address_ = absl::StrCat("127.0.0.1:", port);
    std::vector<std::string> args = {binary_, "--db=" + db_, "--listen=" + address_,
                                     "--time_zone=UTC"};
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const int log_fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) return absl::UnavailableError("cannot open the outreachd log");
    const Clock::time_point start = Clock::now();
    const pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      dup2(log_fd, STDERR_FILENO);
      dup2(log_fd, STDOUT_FILENO);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(log_fd);
    if (pid < 0) return absl::UnavailableError("fork failed");
    pid_ = pid;
    const Clock::time_point deadline = start + absl::ToChronoNanoseconds(timeout);
    while (Clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = 0;
        return absl::UnavailableError(absl::StrCat("outreachd exited early; see ", log_path_));
      }
      // A fresh channel each time: no reconnect backoff carried over from refused attempts.
      grpc::ChannelArguments channel_args;
      channel_args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      auto stub = grpc::health::v1::Health::NewStub(grpc::CreateCustomChannel(
          address_, grpc::InsecureChannelCredentials(), channel_args));
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
      grpc::health::v1::HealthCheckResponse response;
      if (stub->Check(&context, grpc::health::v1::HealthCheckRequest(), &response).ok() &&
          response.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
        return SecondsSince(start);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return absl::DeadlineExceededError("outreachd did not report SERVING in time");
  }

  // VmHWM (peak resident set) in bytes, from /proc; 0 if unreadable.
  uint64_t PeakRssBytes() const {
    std::ifstream status(absl::StrCat("/proc/", pid_, "/status"));
    std::string line;
    while (std::getline(status, line)) {
      if (line.rfind("VmHWM:", 0) != 0) continue;
      uint64_t kib = 0;
      absl::string_view rest = absl::StripAsciiWhitespace(absl::string_view(line).substr(6));
      rest = rest.substr(0, rest.find(' '));
      return absl::SimpleAtoi(rest, &kib) ? kib * 1024 : 0;
    }
    return 0;
  }

  // SIGTERM, and wait for a clean exit.
  absl::Status Stop() {
    if (pid_ <= 0) return absl::OkStatus();
    kill(pid_, SIGTERM);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      return absl::InternalError(absl::StrCat("outreachd did not stop cleanly; see ", log_path_));
    }
    return absl::OkStatus();
  }

  const std::string& address() const { return address_; }

 private:
  const std::string binary_;
  const std::string db_;
  const std::string log_path_;
  std::string address_;
  pid_t pid_ = 0;
};

// Runs outreach-load against `address`; returns its one JSON line.
absl::StatusOr<std::string> RunLoad(const std::string& address, const std::string& args) {
  const std::string command =
      absl::StrCat(absl::GetFlag(FLAGS_load), " --target=", address, " ", args,
                   " --json --progress=false");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return absl::UnavailableError("cannot run outreach-load");
  std::string out;
  char buffer[4096];
  while (std::size_t n = fread(buffer, 1, sizeof(buffer), pipe)) out.append(buffer, n);
  const int status = pclose(pipe);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(absl::StrCat("outreach-load failed: ", command));
  }
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// outreach-load `mixed` at concurrency 16 for --rss_seconds: traffic that grows the server's
// memory (writes, lists, reads) while its peak RSS is watched.
absl::StatusOr<std::string> RunMixedForRss(const std::string& address) {
  return RunLoad(address, absl::StrFormat("--scenario=mixed --concurrency=16 --duration=%g "
                                          "--preload_tasks=2000",
                                          absl::GetFlag(FLAGS_rss_seconds)));
}

// The figures, in the order they are printed.
class Report {
 public:
  void Add(const std::string& key, double value) {
    fields_.push_back(absl::StrFormat("\"%s\":%.6g", key, value));
  }
  void AddRaw(const std::string& key, const std::string& json) {
    fields_.push_back(absl::StrFormat("\"%s\":%s", key, json));
  }
  std::string Json() const { return absl::StrCat("{", absl::StrJoin(fields_, ","), "}"); }

 private:
  std::vector<std::string> fields_;
};

// Worklist measurements on a closed store directory: in process, then through outreachd; then,
// with `rss_run`, `mixed` at concurrency 16 for --rss_seconds; outreachd's peak RSS after all.
absl::Status MeasureWorklist(const std::string& dir, const std::string& prefix, bool rss_run,
                             Report& report) {
  {
    absl::StatusOr<std::unique_ptr<store::EventStore>> store =
        store::EventStore::Open(dir, store::StoreOptions());
    if (!store.ok()) return store.status();
    absl::StatusOr<ListLatency> list =
        MeasureListInProcess(**store, absl::GetFlag(FLAGS_in_process_lists));
    if (!list.ok()) return list.status();
    report.Add(prefix + "_store_list_p50_ms", list->p50_ms);
    report.Add(prefix + "_store_list_p99_ms", list->p99_ms);
    Log(absl::StrFormat("%s: in-process ListTasks p50 %.3f ms, p99 %.3f ms", prefix,
                        list->p50_ms, list->p99_ms));
  }
  Daemon daemon(absl::GetFlag(FLAGS_outreachd), dir, dir + ".outreachd.log");
  absl::StatusOr<double> startup = daemon.StartAndWaitServing(absl::Seconds(120));
  if (!startup.ok()) return startup.status();
  report.Add(prefix + "_startup_s", *startup);
  absl::StatusOr<std::string> list = RunLoad(
      daemon.address(), absl::StrFormat("--scenario=list --concurrency=1 --duration=%g "
                                        "--preload_tasks=0",
                                        absl::GetFlag(FLAGS_list_seconds)));
  if (!list.ok()) return list.status();
  report.AddRaw(prefix + "_list_c1", *list);
  Log(absl::StrFormat("%s: outreachd start-up %.3f s; list via gRPC: %s", prefix, *startup,
                      *list));
  if (rss_run) {
    absl::StatusOr<std::string> mixed = RunMixedForRss(daemon.address());
    if (!mixed.ok()) return mixed.status();
    report.AddRaw(prefix + "_rss_mixed_c16", *mixed);
  }
  const uint64_t peak = daemon.PeakRssBytes();
  report.Add(prefix + "_peak_rss_bytes", static_cast<double>(peak));
  Log(absl::StrFormat("%s: outreachd peak RSS %.1f MiB", prefix,
                      static_cast<double>(peak) / (1 << 20)));
  return daemon.Stop();
}

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage(
      "outreach-bench-data --outreachd=PATH --load=PATH: rebuild, start-up, RSS, disk and "
      "worklist measurements on a 1,000,000-event log (see the top of bench_data.cc)");
  absl::ParseCommandLine(argc, argv);
  const uint64_t tasks = absl::GetFlag(FLAGS_tasks);
  const uint64_t events = absl::GetFlag(FLAGS_events);
  if (absl::GetFlag(FLAGS_outreachd).empty() || absl::GetFlag(FLAGS_load).empty() || tasks == 0 ||
      events < tasks) {
    absl::FPrintF(stderr, "outreach-bench-data: want --outreachd, --load, and --events >= "
                          "--tasks > 0\n");
    return 2;
  }
  const auto fail = [](const absl::Status& status) {
    absl::FPrintF(stderr, "outreach-bench-data: %s\n", status.ToString());
    return 1;
  };
  Report report;
  report.Add("tasks", static_cast<double>(tasks));
  report.Add("events", static_cast<double>(events));

  // 1-2. Build the log, then rebuild its projections.
  const std::string dir = ScratchDir("bench-data-main");
  {
    store::StoreOptions options;
    options.sync_writes = false;  // setup speed; see the top of the file
    absl::StatusOr<std::unique_ptr<store::EventStore>> store = store::EventStore::Open(dir, options);
    if (!store.ok()) return fail(store.status());
    Log(absl::StrCat("loading ", events, " events over ", tasks, " tasks into ", dir));
    const Clock::time_point load_start = Clock::now();
    if (absl::Status s = BuildLog(**store, tasks, events); !s.ok()) return fail(s);
    const double load_seconds = SecondsSince(load_start);
    if ((*store)->HeadPosition() != events) {
      return fail(absl::InternalError(absl::StrCat("head is ", (*store)->HeadPosition(),
                                                   ", want ", events)));
    }
    report.Add("load_events_per_s", static_cast<double>(events) / load_seconds);
    Log(absl::StrFormat("loaded in %.1f s (%.0f events/s, sync off)", load_seconds,
                        static_cast<double>(events) / load_seconds));

    absl::StatusOr<std::string> live = (*store)->DumpProjections();
    if (!live.ok()) return fail(live.status());
    const Clock::time_point rebuild_start = Clock::now();
    if (absl::Status s = (*store)->RebuildProjections(); !s.ok()) return fail(s);
    const double rebuild_seconds = SecondsSince(rebuild_start);
    absl::StatusOr<std::string> rebuilt = (*store)->DumpProjections();
    if (!rebuilt.ok()) return fail(rebuilt.status());
    const bool identical = *live == *rebuilt;
    report.Add("rebuild_s", rebuild_seconds);
    report.Add("rebuild_events_per_s", static_cast<double>(events) / rebuild_seconds);
    report.Add("rebuild_identical", identical ? 1 : 0);
    report.Add("projection_dump_bytes", static_cast<double>(live->size()));
    Log(absl::StrFormat("rebuild: %.2f s, %.0f events/s; rebuilt projections %s the live ones "
                        "(%.1f MiB dumped)",
                        rebuild_seconds, static_cast<double>(events) / rebuild_seconds,
                        identical ? "byte-identical to" : "DIFFER from",
                        static_cast<double>(live->size()) / (1 << 20)));
    *live = std::string();
    *rebuilt = std::string();
    absl::StatusOr<ListLatency> stats =
        MeasureStatsInProcess(**store, absl::GetFlag(FLAGS_in_process_reports));
    if (!stats.ok()) return fail(stats.status());
    report.Add("stats_90d_p50_ms", stats->p50_ms);
    report.Add("stats_90d_p99_ms", stats->p99_ms);
    Log(absl::StrFormat("in-process 90-day GetOutreachStats p50 %.3f ms, p99 %.3f ms",
                        stats->p50_ms, stats->p99_ms));
  }
  if (absl::GetFlag(FLAGS_stats_only)) {
    absl::PrintF("%s\n", report.Json());
    if (!absl::GetFlag(FLAGS_keep)) std::filesystem::remove_all(dir);
    return 0;
  }

  // 4 (first start, as the load left the directory) and 5.
  {
    Daemon daemon(absl::GetFlag(FLAGS_outreachd), dir, dir + ".outreachd.log");
    absl::StatusOr<double> startup = daemon.StartAndWaitServing(absl::Seconds(120));
    if (!startup.ok()) return fail(startup.status());
    report.Add("startup_uncompacted_s", *startup);
    Log(absl::StrFormat("start-up to SERVING (uncompacted): %.3f s", *startup));
    if (absl::Status s = daemon.Stop(); !s.ok()) return fail(s);
  }
  report.Add("disk_bytes_before_compaction", static_cast<double>(DiskUsage(dir)));
  absl::StatusOr<uint64_t> event_bytes = EventBytes(dir);
  if (!event_bytes.ok()) return fail(event_bytes.status());
  if (absl::Status s = CompactAll(dir); !s.ok()) return fail(s);
  const uint64_t disk = DiskUsage(dir);
  report.Add("event_bytes", static_cast<double>(*event_bytes));
  report.Add("disk_bytes_compacted", static_cast<double>(disk));
  report.Add("disk_to_event_bytes", static_cast<double>(disk) / static_cast<double>(*event_bytes));
  Log(absl::StrFormat("disk after compaction %.1f MiB; serialized events %.1f MiB (x%.2f)",
                      static_cast<double>(disk) / (1 << 20),
                      static_cast<double>(*event_bytes) / (1 << 20),
                      static_cast<double>(disk) / static_cast<double>(*event_bytes)));

  // 3, 4 (compacted) and 5 at --tasks open tasks.
  if (absl::Status s = MeasureWorklist(dir, "main", /*rss_run=*/false, report); !s.ok()) {
    return fail(s);
  }

  // 6. Peak RSS through a mixed run on the 1M-event database.
  {
    Daemon daemon(absl::GetFlag(FLAGS_outreachd), dir, dir + ".outreachd.log");
    absl::StatusOr<double> startup = daemon.StartAndWaitServing(absl::Seconds(120));
    if (!startup.ok()) return fail(startup.status());
    report.Add("rss_after_startup_bytes", static_cast<double>(daemon.PeakRssBytes()));
    absl::StatusOr<std::string> mixed = RunMixedForRss(daemon.address());
    if (!mixed.ok()) return fail(mixed.status());
    const uint64_t peak = daemon.PeakRssBytes();
    report.Add("peak_rss_bytes", static_cast<double>(peak));
    report.AddRaw("rss_mixed_c16", *mixed);
    Log(absl::StrFormat("outreachd peak RSS %.1f MiB through start-up and mixed: %s",
                        static_cast<double>(peak) / (1 << 20), *mixed));
    if (absl::Status s = daemon.Stop(); !s.ok()) return fail(s);
  }
  if (!absl::GetFlag(FLAGS_keep)) RemoveDir(dir);

  // 7. The large worklist.
  if (const uint64_t large = absl::GetFlag(FLAGS_large_tasks); large > 0) {
    const std::string large_dir = ScratchDir("bench-data-large");
    {
      store::StoreOptions options;
      options.sync_writes = false;
      absl::StatusOr<std::unique_ptr<store::EventStore>> store =
          store::EventStore::Open(large_dir, options);
      if (!store.ok()) return fail(store.status());
      Log(absl::StrCat("loading ", large, " open tasks into ", large_dir));
      const Clock::time_point start = Clock::now();
      if (absl::Status s = BuildLog(**store, large, large); !s.ok()) return fail(s);
      Log(absl::StrFormat("loaded in %.1f s", SecondsSince(start)));
    }
    report.Add("large_tasks", static_cast<double>(large));
    if (absl::Status s = MeasureWorklist(large_dir, "large", /*rss_run=*/true, report); !s.ok()) {
      return fail(s);
    }
    if (!absl::GetFlag(FLAGS_keep)) RemoveDir(large_dir);
  }

  absl::PrintF("%s\n", report.Json());
  return 0;
}

}  // namespace
}  // namespace outreach::bench

int main(int argc, char** argv) {
  // The stores it builds are served by outreachd, which refuses a directory others can read.
  umask(077);
  return outreach::bench::Main(argc, argv);
}
