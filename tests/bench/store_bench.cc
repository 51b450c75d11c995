// Store micro-benchmarks (Google Benchmark): the pure rules, the event codec and its hash, the
// write path with and without fsync at several concurrencies, and a worklist page.
//
//   store_bench [--benchmark_filter=...] [--benchmark_min_time=0.2]
//
// Stores live in $OUTREACH_BENCH_DIR (default: the system temporary directory), which must be a
// real disk for the sync=1 figures to mean anything; each is loaded once and removed at exit.
// Every write benchmark logs contacts round-robin over kWriteTasks preloaded tasks, so that no
// task's projection grows large within a run.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <benchmark/benchmark.h>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "domain/task_rules.h"
#include "store/event_codec.h"
#include "store/event_store.h"
#include "tests/bench/bench_support.h"

namespace outreach::bench {
namespace {

constexpr uint64_t kWriteTasks = 8192;

domain::DecideContext Context() { return {absl::Now(), absl::UTCTimeZone()}; }

// The state of a task after its creation and `contacts` logged contacts.
v1::Task TaskWithContacts(int contacts) {
  const absl::CivilDay follow_up = TomorrowUtc();
  v1::Task task;
  auto fold = [&](const domain::Command& command) {
    const std::optional<v1::Task> state =
        task.task_id().empty() ? std::nullopt : std::optional<v1::Task>(task);
    absl::StatusOr<std::vector<domain::NewEvent>> events = domain::Decide(state, command, Context());
    if (!events.ok()) std::abort();
    for (const domain::NewEvent& e : *events) {
      storage::v1::StoredEvent event = e.event;
      event.set_version(task.version() + 1);
      if (!domain::Apply(task, event).ok()) std::abort();
    }
  };
  fold(CreateCommand(1, follow_up));
  for (int i = 0; i < contacts; ++i) fold(LogContactCommand(task.task_id(), i, follow_up));
  return task;
}

void BM_DecideApplyCreate(benchmark::State& state) {
  const domain::Command command = CreateCommand(1, TomorrowUtc());
  const domain::DecideContext context = Context();
  for (auto _ : state) {
    absl::StatusOr<std::vector<domain::NewEvent>> events =
        domain::Decide(std::nullopt, command, context);
    v1::Task task;
    for (domain::NewEvent& e : *events) {
      e.event.set_version(1);
      benchmark::DoNotOptimize(domain::Apply(task, e.event));
    }
    benchmark::DoNotOptimize(task);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecideApplyCreate);

// Decide and Apply a LogContact on a copy of a task that already has range(0) contacts (the
// store folds into the state it has just read).
void BM_DecideApplyLogContact(benchmark::State& state) {
  const v1::Task before = TaskWithContacts(static_cast<int>(state.range(0)));
  const domain::Command command = LogContactCommand(before.task_id(), 7, TomorrowUtc());
  const domain::DecideContext context = Context();
  const std::optional<v1::Task> current = before;
  for (auto _ : state) {
    absl::StatusOr<std::vector<domain::NewEvent>> events =
        domain::Decide(current, command, context);
    v1::Task task = before;
    for (domain::NewEvent& e : *events) {
      e.event.set_version(task.version() + 1);
      benchmark::DoNotOptimize(domain::Apply(task, e.event));
    }
    benchmark::DoNotOptimize(task);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_DecideApplyLogContact)->Arg(0)->Arg(10);

// A typical ContactLogged event, as the store would append it.
storage::v1::StoredEvent SampleEvent() {
  absl::StatusOr<std::vector<domain::NewEvent>> events = domain::Decide(
      TaskWithContacts(1), LogContactCommand("t000000001", 3, TomorrowUtc()), Context());
  if (!events.ok() || events->empty()) std::abort();
  storage::v1::StoredEvent event = (*events)[0].event;
  event.set_schema_version(store::kEventSchemaVersion);
  event.set_position(123456);
  event.set_version(3);
  event.set_event_id("0b6f4a6e-5d7c-4e58-9a0f-3a1c2b4d5e6f");
  *event.mutable_recorded_at() = event.occurred_at();
  return event;
}

// Serialize + SHA-256 chain hash + envelope.
void BM_EncodeEvent(benchmark::State& state) {
  const storage::v1::StoredEvent event = SampleEvent();
  store::Hash hash = store::ZeroHash();
  for (auto _ : state) {
    std::string value = store::EncodeEvent(event, hash, &hash);
    benchmark::DoNotOptimize(value);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_EncodeEvent);

// Parse + upcast, without and with the hash check.
void BM_DecodeEvent(benchmark::State& state) {
  const bool verify = state.range(0) != 0;
  const storage::v1::StoredEvent event = SampleEvent();
  store::Hash hash = store::ZeroHash();
  const std::string value = store::EncodeEvent(event, hash, &hash);
  for (auto _ : state) {
    absl::StatusOr<store::DecodedEvent> decoded = store::DecodeEvent(event.position(), value);
    if (!decoded.ok()) std::abort();
    if (verify && !store::VerifyEventHash(*decoded)) std::abort();
    benchmark::DoNotOptimize(decoded);
  }
  state.SetItemsProcessed(state.iterations());
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(value.size()));
}
BENCHMARK(BM_DecodeEvent)->ArgName("verify_hash")->Arg(0)->Arg(1);

// A store opened on first use and kept until the process exits (Google Benchmark calls a
// benchmark function several times while it sizes the iteration count; loading once is enough).
class CachedStore {
 public:
  // The store named `name`, opened with `sync` and loaded by `load` the first time it is asked
  // for. Thread-safe.
  static CachedStore& Get(const std::string& name, bool sync,
                          const std::function<absl::Status(store::EventStore&)>& load) {
    absl::MutexLock lock(&mu_);
    std::unique_ptr<CachedStore>& slot = (*stores_)[name];
    if (slot == nullptr) slot.reset(new CachedStore(name, sync, load));
    return *slot;
  }

  // Closes and removes every store. main() calls it after the benchmarks: left to static
  // destruction, a store would close after RocksDB's own statics are gone.
  static void CloseAll() {
    absl::MutexLock lock(&mu_);
    stores_->clear();
  }

  CachedStore(const CachedStore&) = delete;
  CachedStore& operator=(const CachedStore&) = delete;
  ~CachedStore() {
    store_.reset();
    RemoveDir(dir_);
  }

  // Null when opening or loading failed (see error()).
  store::EventStore* store() { return store_.get(); }
  const absl::Status& error() const { return error_; }

 private:
  CachedStore(const std::string& name, bool sync,
              const std::function<absl::Status(store::EventStore&)>& load)
      : dir_(ScratchDir(name)) {
    store::StoreOptions options;
    options.sync_writes = sync;
    absl::StatusOr<std::unique_ptr<store::EventStore>> opened =
        store::EventStore::Open(dir_, options);
    if (!opened.ok()) {
      error_ = opened.status();
      return;
    }
    error_ = load(**opened);
    if (error_.ok()) store_ = *std::move(opened);
  }

  static absl::Mutex mu_;
  static std::map<std::string, std::unique_ptr<CachedStore>>* const stores_
      ABSL_GUARDED_BY(mu_);

  const std::string dir_;
  std::unique_ptr<store::EventStore> store_;
  absl::Status error_;
};

absl::Mutex CachedStore::mu_(absl::kConstInit);
std::map<std::string, std::unique_ptr<CachedStore>>* const CachedStore::stores_ =
    new std::map<std::string, std::unique_ptr<CachedStore>>;

// The write benchmarks' store for one sync mode: kWriteTasks open tasks.
store::EventStore* WriteStore(bool sync, benchmark::State& state) {
  CachedStore& cached = CachedStore::Get(
      sync ? "store-bench-sync" : "store-bench-nosync", sync, [](store::EventStore& store) {
        const absl::CivilDay follow_up = TomorrowUtc();
        return BulkSubmit(store, kWriteTasks, 1024,
                          [&](uint64_t i) { return CreateCommand(i, follow_up); });
      });
  if (cached.store() == nullptr) state.SkipWithError(cached.error().ToString().c_str());
  return cached.store();
}

// The next write: a contact on the next task, round-robin over every thread's calls.
domain::Command NextContact() {
  static std::atomic<uint64_t> next{0};
  static const absl::CivilDay follow_up = TomorrowUtc();
  const uint64_t i = next.fetch_add(1, std::memory_order_relaxed);
  return LogContactCommand(TaskId(i % kWriteTasks), i, follow_up + static_cast<int>(i % 28));
}

// Execute (submit and wait) from `threads` threads at once: range(0) = sync.
void BM_Execute(benchmark::State& state) {
  store::EventStore* store = WriteStore(state.range(0) != 0, state);
  if (store == nullptr) return;
  for (auto _ : state) {
    absl::StatusOr<store::CommandResult> result = store->Execute(NextContact(), "");
    if (!result.ok()) {
      state.SkipWithError(std::string(result.status().message()).c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Execute)
    ->ArgName("sync")
    ->Arg(0)
    ->Arg(1)
    ->Threads(1)
    ->Threads(16)
    ->Threads(64)
    ->UseRealTime();

// One thread keeps range(1) commands in flight with Submit: each iteration is one wave of
// range(1) commands, waited for together. range(0) = sync.
void BM_Submit(benchmark::State& state) {
  store::EventStore* store = WriteStore(state.range(0) != 0, state);
  if (store == nullptr) return;
  const int64_t in_flight = state.range(1);
  for (auto _ : state) {
    absl::Mutex mu;
    int64_t done = 0;
    bool failed = false;
    for (int64_t i = 0; i < in_flight; ++i) {
      store->Submit(NextContact(), "", [&](absl::StatusOr<store::CommandResult> result) {
        absl::MutexLock lock(&mu);
        failed |= !result.ok();
        ++done;
      });
    }
    absl::MutexLock lock(&mu);
    const auto all_done = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu) { return done == in_flight; };
    mu.Await(absl::Condition(&all_done));
    if (failed) {
      state.SkipWithError("a command failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations() * in_flight);
}
BENCHMARK(BM_Submit)
    ->ArgNames({"sync", "in_flight"})
    ->ArgsProduct({{0, 1}, {1, 16, 64}})
    ->UseRealTime();

// The first page of 50 of the default worklist from range(0) open tasks (loaded with sync off:
// only the reads are measured).
void BM_ListTasksPage50(benchmark::State& state) {
  const uint64_t tasks = static_cast<uint64_t>(state.range(0));
  CachedStore& cached = CachedStore::Get(
      absl::StrCat("store-bench-list-", tasks), /*sync=*/false, [tasks](store::EventStore& store) {
        const absl::CivilDay follow_up = TomorrowUtc();
        return BulkSubmit(store, tasks, 4096, [&](uint64_t i) {
          return CreateCommand(i, follow_up + static_cast<int>(i % 60));
        });
      });
  if (cached.store() == nullptr) {
    state.SkipWithError(cached.error().ToString().c_str());
    return;
  }
  store::ListQuery query;
  query.page_size = 50;
  for (auto _ : state) {
    absl::StatusOr<store::ListPage> page = cached.store()->ListTasks(query);
    if (!page.ok() || page->tasks.size() != 50) {
      state.SkipWithError("ListTasks did not return a full page");
      break;
    }
    benchmark::DoNotOptimize(page);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ListTasksPage50)->Arg(1000)->Arg(20000)->Arg(200000)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace outreach::bench

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  outreach::bench::CachedStore::CloseAll();
  return 0;
}
