#include "server/metrics.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <atomic>
#include <exception>
#include <fstream>
#include <sstream>
#include <thread>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "prometheus/collectable.h"
#include "prometheus/gauge.h"
#include "prometheus/metric_family.h"
#include "server/grpc_status.h"
#include "server/auth.h"
#include "server/server.h"

#ifndef OUTREACH_VERSION
#define OUTREACH_VERSION "unknown"
#endif
#ifndef OUTREACH_GIT_COMMIT
#define OUTREACH_GIT_COMMIT "unknown"
#endif

namespace outreach::server {
namespace {

// RPC latency: 0.5 ms to 10 s (a health check to a slow stream page).
const prometheus::Histogram::BucketBoundaries& RpcBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10};
  return *buckets;
}

// One write+fsync: 100 us to 5 s.
const prometheus::Histogram::BucketBoundaries& CommitBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128,
      0.256, 0.512, 1, 2, 5};
  return *buckets;
}

// Commands per batch: 1 to the writer's maximum (1024).
const prometheus::Histogram::BucketBoundaries& BatchBuckets() {
  static const auto* buckets = new prometheus::Histogram::BucketBoundaries{
      1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
  return *buckets;
}

// ---- Building families at scrape time ----

prometheus::MetricFamily Family(const std::string& name, const std::string& help,
                                prometheus::MetricType type) {
  prometheus::MetricFamily family;
  family.name = name;
  family.help = help;
  family.type = type;
  return family;
}

void AddValue(prometheus::MetricFamily& family, double value,
              std::vector<prometheus::ClientMetric::Label> labels = {}) {
  prometheus::ClientMetric metric;
  metric.label = std::move(labels);
  if (family.type == prometheus::MetricType::Counter) {
    metric.counter.value = value;
  } else {
    metric.gauge.value = value;
  }
  family.metric.push_back(std::move(metric));
}

prometheus::MetricFamily One(const std::string& name, const std::string& help,
                             prometheus::MetricType type, double value) {
  prometheus::MetricFamily family = Family(name, help, type);
  AddValue(family, value);
  return family;
}

constexpr auto kGauge = prometheus::MetricType::Gauge;
constexpr auto kCounter = prometheus::MetricType::Counter;

// ---- The process (/proc/self) ----

struct ProcessFigures {
  double cpu_seconds = 0;
  double rss_bytes = 0;
  double start_time = 0;  // unix seconds
  double open_fds = 0;
  double max_fds = 0;
};

double BootTime() {
  std::ifstream in("/proc/stat");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("btime ", 0) == 0) return std::stod(line.substr(6));
  }
  return 0;
}

double OpenFds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  double fds = 0;
  while (dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++fds;
  }
  closedir(dir);
  return fds - 1;  // the directory stream's own descriptor
}

ProcessFigures ReadProcess() {
  ProcessFigures figures;
  std::ifstream in("/proc/self/stat");
  std::stringstream text;
  text << in.rdbuf();
  const std::string stat = text.str();
  // Fields after the command name, which is in parentheses and may hold spaces.
  const std::size_t close = stat.rfind(')');
  if (close != std::string::npos) {
    std::vector<std::string> f = absl::StrSplit(stat.substr(close + 2), ' ');
    // f[0] is field 3 (state): field N is f[N - 3].
    if (f.size() > 21) {
      const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
      figures.cpu_seconds = (std::stod(f[11]) + std::stod(f[12])) / ticks;
      figures.start_time = BootTime() + std::stod(f[19]) / ticks;
      figures.rss_bytes = std::stod(f[21]) * static_cast<double>(sysconf(_SC_PAGESIZE));
    }
  }
  figures.open_fds = OpenFds();
  figures.max_fds = static_cast<double>(sysconf(_SC_OPEN_MAX));
  return figures;
}

void AddProcess(std::vector<prometheus::MetricFamily>& out) {
  const ProcessFigures p = ReadProcess();
  out.push_back(One("process_cpu_seconds_total", "User and system CPU time spent, in seconds.",
                    kCounter, p.cpu_seconds));
  out.push_back(One("process_resident_memory_bytes", "Resident memory size in bytes.", kGauge,
                    p.rss_bytes));
  out.push_back(One("process_start_time_seconds",
                    "Start time of the process since the unix epoch, in seconds.", kGauge,
                    p.start_time));
  out.push_back(One("process_open_fds", "Number of open file descriptors.", kGauge, p.open_fds));
  out.push_back(One("process_max_fds", "Maximum number of open file descriptors.", kGauge,
                    p.max_fds));
  prometheus::MetricFamily build =
      Family("outreach_build_info", "The running build: version and git commit (value 1).",
             kGauge);
  AddValue(build, 1, {{"version", OUTREACH_VERSION}, {"git_commit", OUTREACH_GIT_COMMIT}});
  out.push_back(std::move(build));
}

void AddFileSystem(const std::string& dir, std::vector<prometheus::MetricFamily>& out) {
  struct statvfs fs {};
  if (dir.empty() || statvfs(dir.c_str(), &fs) != 0) return;
  const double block = static_cast<double>(fs.f_frsize);
  out.push_back(One("outreach_db_filesystem_free_bytes",
                    "Bytes available to outreachd on the --db file system.", kGauge,
                    static_cast<double>(fs.f_bavail) * block));
  out.push_back(One("outreach_db_filesystem_size_bytes", "Size of the --db file system in bytes.",
                    kGauge, static_cast<double>(fs.f_blocks) * block));
}

}  // namespace

// ---- RpcMetrics ----

RpcMetrics::RpcMetrics(prometheus::Registry& registry)
    : requests_(prometheus::BuildCounter()
                    .Name("outreach_rpc_requests_total")
                    .Help("RPCs finished, by method and status code.")
                    .Register(registry)),
      duration_(prometheus::BuildHistogram()
                    .Name("outreach_rpc_duration_seconds")
                    .Help("RPC duration from arrival to status, by method and status code.")
                    .Register(registry)) {
  for (const MethodRule& rule : MethodTable()) {
    std::string name(rule.method);
    methods_.emplace(name, std::make_unique<Method>(this, name));
  }
  methods_.emplace("other", std::make_unique<Method>(this, "other"));
}

RpcMetrics::Method* RpcMetrics::ForMethod(absl::string_view method) {
  auto it = methods_.find(method);
  return it != methods_.end() ? it->second.get() : methods_.at("other").get();
}

RpcMetrics::Series* RpcMetrics::Make(const std::string& method, grpc::StatusCode code) {
  const prometheus::Labels labels = {{"method", method}, {"code", CodeName(code)}};
  absl::MutexLock lock(&mu_);
  // Family::Add returns the existing series for the same labels.
  made_.push_back(std::make_unique<Series>(
      Series{&requests_.Add(labels), &duration_.Add(labels, RpcBuckets())}));
  return made_.back().get();
}

void RpcMetrics::Method::Record(grpc::StatusCode code, absl::Duration duration) {
  int i = static_cast<int>(code);
  if (i < 0 || i >= kCodes) i = static_cast<int>(grpc::StatusCode::UNKNOWN);
  Series* series = by_code_[i].load(std::memory_order_acquire);
  if (series == nullptr) {
    // Two first calls may both make it: Family::Add gives both the same series.
    series = owner_->Make(name_, static_cast<grpc::StatusCode>(i));
    by_code_[i].store(series, std::memory_order_release);
  }
  series->requests->Increment();
  series->duration->Observe(absl::ToDoubleSeconds(duration));
}

// ---- The store's write path ----

class Metrics::StoreEvents final : public store::StoreObserver {
 public:
  explicit StoreEvents(prometheus::Registry& registry)
      : batch_(prometheus::BuildHistogram()
                   .Name("outreach_writer_batch_commands")
                   .Help("Commands the writer decided and wrote in one batch (one fsync).")
                   .Register(registry)
                   .Add({}, BatchBuckets())),
        commit_(prometheus::BuildHistogram()
                    .Name("outreach_writer_commit_seconds")
                    .Help("Time of one batch's RocksDB write and fsync.")
                    .Register(registry)
                    .Add({}, CommitBuckets())),
        refused_(prometheus::BuildCounter()
                     .Name("outreach_writer_refused_commands_total")
                     .Help("Commands refused without being decided: a failed write or sync, "
                           "a full disk, the free-space reserve.")
                     .Register(registry)
                     .Add({})),
        rebuild_folded_(prometheus::BuildGauge()
                            .Name("outreach_rebuild_folded_events")
                            .Help("Events folded by the last projection rebuild so far.")
                            .Register(registry)
                            .Add({})),
        rebuild_total_(prometheus::BuildGauge()
                           .Name("outreach_rebuild_total_events")
                           .Help("Events the last projection rebuild folds in all.")
                           .Register(registry)
                           .Add({})) {}

  void BatchCommitted(std::size_t commands, absl::Duration commit) override {
    batch_.Observe(static_cast<double>(commands));
    commit_.Observe(absl::ToDoubleSeconds(commit));
  }
  void CommandsRefused(std::size_t commands) override {
    refused_.Increment(static_cast<double>(commands));
  }
  void RebuildProgress(uint64_t folded, uint64_t total) override {
    rebuild_total_.Set(static_cast<double>(total));
    rebuild_folded_.Set(static_cast<double>(folded));
  }

 private:
  prometheus::Histogram& batch_;
  prometheus::Histogram& commit_;
  prometheus::Counter& refused_;
  prometheus::Gauge& rebuild_folded_;
  prometheus::Gauge& rebuild_total_;
};

// ---- Levels at scrape time ----

class Metrics::ScrapeCollector final : public prometheus::Collectable {
 public:
  // Open tasks are counted from index rows (one per open task): at most this often.
  static constexpr absl::Duration kOpenTasksEvery = absl::Seconds(30);
  // Due tasks are counted up to this many rows.
  static constexpr uint64_t kDueCap = 100000;

  explicit ScrapeCollector(std::string db_dir) : db_dir_(std::move(db_dir)) {}

  void Watch(const store::EventStore* store, const OutreachServer* server) {
    absl::MutexLock lock(&mu_);
    store_ = store;
    server_ = server;
    open_tasks_counted_ = absl::InfinitePast();
  }

  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out;
    AddProcess(out);
    AddFileSystem(db_dir_, out);
    absl::MutexLock lock(&mu_);
    if (store_ != nullptr) {
      AddStore(out);
      AddRocksDb(out);
      AddTasks(out);
    }
    if (server_ != nullptr) AddServer(out);
    return out;
  }

 private:
  void AddStore(std::vector<prometheus::MetricFamily>& out) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const store::StoreStats stats = store_->Stats();
    out.push_back(One("outreach_log_head_position", "Position of the last event in the log.",
                      kGauge, static_cast<double>(stats.head_position)));
    out.push_back(One("outreach_writer_queue_depth",
                      "Commands queued for the writer and not yet taken.", kGauge,
                      static_cast<double>(stats.queue_depth)));
    out.push_back(One("outreach_access_log_appends_total",
                      "Read-access records appended to the access log.", kCounter,
                      static_cast<double>(stats.access_log_appends)));
    out.push_back(One("outreach_verify_failures_total",
                      "Log verifications (VerifyLog) that found the log damaged.", kCounter,
                      static_cast<double>(stats.verify_failures)));
    out.push_back(One("outreach_checkpoints_total",
                      "Verified checkpoints the writer recorded.", kCounter,
                      static_cast<double>(stats.checkpoints)));
    const bool refused = !store_->read_only() && !store_->WriteHealth().ok();
    out.push_back(One("outreach_writes_refused",
                      "1 while the store refuses writes (TaskService health NOT_SERVING).",
                      kGauge, refused ? 1 : 0));
  }

  void AddRocksDb(std::vector<prometheus::MetricFamily>& out) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const store::RocksDbStats rocks = store_->RocksDb();
    out.push_back(One("outreach_rocksdb_live_sst_bytes", "Bytes of live SST files.", kGauge,
                      static_cast<double>(rocks.live_sst_bytes)));
    out.push_back(One("outreach_rocksdb_memtable_bytes", "Bytes of all memtables.", kGauge,
                      static_cast<double>(rocks.memtable_bytes)));
    out.push_back(One("outreach_rocksdb_pending_compaction_bytes",
                      "Estimated bytes compaction has to rewrite.", kGauge,
                      static_cast<double>(rocks.pending_compaction_bytes)));
    out.push_back(One("outreach_rocksdb_write_stalls_total",
                      "Write slowdowns and stops RocksDB imposed.", kCounter,
                      static_cast<double>(rocks.write_stalls)));
    out.push_back(One("outreach_rocksdb_write_stopped", "1 while RocksDB stops writes.", kGauge,
                      rocks.write_stopped ? 1 : 0));
  }

  void AddTasks(std::vector<prometheus::MetricFamily>& out) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (absl::StatusOr<uint64_t> due = store_->CountDueTasks(absl::Now(), kDueCap); due.ok()) {
      out.push_back(One("outreach_expiry_due_tasks",
                        "Automatic tasks past their expires_at and not yet closed.", kGauge,
                        static_cast<double>(*due)));
    }
    const absl::Time now = absl::Now();
    if (now - open_tasks_counted_ >= kOpenTasksEvery) {
      absl::StatusOr<std::vector<store::EventStore::OpenTaskCount>> counts =
          store_->CountOpenTasksByKind();
      if (counts.ok()) {
        open_tasks_ = *std::move(counts);
        open_tasks_counted_ = now;
      }
    }
    prometheus::MetricFamily open = Family(
        "outreach_open_tasks", "Tasks OPEN or IN_PROGRESS, by kind (counted every 30 s).", kGauge);
    for (const auto& count : open_tasks_) {
      AddValue(open, static_cast<double>(count.open), {{"kind", v1::TaskKind_Name(count.kind)}});
    }
    out.push_back(std::move(open));
  }

  void AddServer(std::vector<prometheus::MetricFamily>& out) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const RefusalLog::Counts refusals = server_->Refusals();
    prometheus::MetricFamily refused =
        Family("outreach_refused_calls_total",
               "Calls refused by authentication or authorization, by reason.", kCounter);
    AddValue(refused, static_cast<double>(refusals.unauthenticated),
             {{"reason", "unauthenticated"}});
    AddValue(refused, static_cast<double>(refusals.permission_denied),
             {{"reason", "permission_denied"}});
    AddValue(refused, static_cast<double>(refusals.invalid_metadata),
             {{"reason", "invalid_metadata"}});
    out.push_back(std::move(refused));
    out.push_back(One("outreach_subscriptions_open", "SubscribeEvents streams open.", kGauge,
                      static_cast<double>(server_->OpenSubscriptions())));
    const uint64_t head = store_ != nullptr ? store_->HeadPosition() : 0;
    prometheus::MetricFamily lag =
        Family("outreach_consumer_lag_events",
               "Events at or below the head not yet sent to a consumer's furthest-behind "
               "subscription, by consumer (the subscribing principal).",
               kGauge);
    for (const SubscriptionHub::ConsumerLag& consumer : server_->ConsumerLags(head)) {
      AddValue(lag, static_cast<double>(consumer.lag), {{"consumer", consumer.consumer}});
    }
    out.push_back(std::move(lag));
  }

  const std::string db_dir_;
  mutable absl::Mutex mu_;
  const store::EventStore* store_ ABSL_GUARDED_BY(mu_) = nullptr;
  const OutreachServer* server_ ABSL_GUARDED_BY(mu_) = nullptr;
  mutable std::vector<store::EventStore::OpenTaskCount> open_tasks_ ABSL_GUARDED_BY(mu_);
  mutable absl::Time open_tasks_counted_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

// ---- Metrics ----

Metrics::Metrics(const std::string& db_dir)
    : registry_(std::make_shared<prometheus::Registry>()),
      rpc_(*registry_),
      store_events_(std::make_unique<StoreEvents>(*registry_)),
      scrape_(std::make_shared<ScrapeCollector>(db_dir)) {}

absl::StatusOr<std::unique_ptr<Metrics>> Metrics::Start(const std::string& listen,
                                                        const std::string& db_dir) {
  std::unique_ptr<Metrics> metrics(new Metrics(db_dir));
  try {
    // One serving thread: a scrape is rare, and must not compete with the RPCs.
    metrics->exposer_ = std::make_unique<prometheus::Exposer>(listen, 1);
  } catch (const std::exception& e) {
    return absl::UnavailableError(
        absl::StrCat("--metrics-listen: cannot serve on \"", listen, "\": ", e.what()));
  }
  metrics->exposer_->RegisterCollectable(metrics->registry_);
  metrics->exposer_->RegisterCollectable(metrics->scrape_);
  const std::vector<int> ports = metrics->exposer_->GetListeningPorts();
  metrics->port_ = ports.empty() ? 0 : ports[0];
  const std::size_t colon = listen.rfind(':');
  metrics->address_ = absl::StrCat(listen.substr(0, colon), ":", metrics->port_);
  return metrics;
}

namespace {

// Opens and closes a connection to 127.0.0.1:`port` (errors ignored).
void Poke(int port) {
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  close(fd);
}

}  // namespace

Metrics::~Metrics() {
  // The exposer's listening thread (civetweb) notices a stop only between polls of 2 s; a
  // connection ends the poll at once, so stopping takes milliseconds instead of up to 2 s. (A
  // --metrics-listen address that 127.0.0.1 does not reach just waits for the poll.)
  std::atomic<bool> stopped{false};
  std::thread waker([&] {
    while (!stopped.load()) {
      Poke(port_);
      absl::SleepFor(absl::Milliseconds(5));
    }
  });
  exposer_.reset();  // no scrape from here on
  stopped.store(true);
  waker.join();
}

store::StoreObserver* Metrics::store_observer() { return store_events_.get(); }

void Metrics::Watch(const store::EventStore* store, const OutreachServer* server) {
  scrape_->Watch(store, server);
}

}  // namespace outreach::server
