#include "tests/load/workloads.h"

#include <chrono>
#include <functional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace outreach::load {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// One call's state, alive from Start until its callback has run.
template <typename Request, typename Response>
struct Call {
  grpc::ClientContext context;
  Request request;
  Response response;
};

// Starts `start` (a stub's async() method, wrapped) on a fresh Call and runs `then` with the
// status and the response when the call ends, on a gRPC thread.
template <typename Request, typename Response, typename StartFn>
void StartCall(const WorkloadContext& ctx, StartFn start, Request request,
               std::function<void(const grpc::Status&, Response&)> then) {
  auto* call = new Call<Request, Response>;
  call->request = std::move(request);
  if (!ctx.bearer_token.empty()) {
    call->context.AddMetadata("authorization", absl::StrCat("Bearer ", ctx.bearer_token));
  }
  call->context.set_deadline(std::chrono::system_clock::now() +
                             absl::ToChronoNanoseconds(kCallDeadline));
  // The call is gone before `then` runs: `then` ends by telling the runner the request is done,
  // after which the runner may tear down the channels and return from main, so nothing of the
  // call may be destroyed after it (a ClientContext outliving its channel is undefined).
  start(&call->context, &call->request, &call->response,
        [call, then = std::move(then)](grpc::Status status) mutable {
          Response response = std::move(call->response);
          delete call;
          const auto finish = std::move(then);
          finish(status, response);
        });
}

std::string Date(absl::CivilDay day) {
  return absl::StrFormat("%04d-%02d-%02d", day.year(), day.month(), day.day());
}

void CheckHealth(const WorkloadContext& ctx, uint64_t sequence, Done done) {
  auto& stub = ctx.connections->health(sequence);
  StartCall<HealthCheckRequest, HealthCheckResponse>(
      ctx, [&stub](auto* context, auto* request, auto* response, auto callback) {
        stub.async()->Check(context, request, response, std::move(callback));
      },
      HealthCheckRequest(),
      [done = std::move(done)](const grpc::Status& status, HealthCheckResponse& response) {
        if (status.ok() && response.status() != HealthCheckResponse::SERVING) {
          done(grpc::Status(grpc::StatusCode::UNAVAILABLE, "health: not SERVING"), {});
          return;
        }
        done(status, {});
      });
}

// CreateTask; `created` (may be empty) receives the new task's id on success.
void CreateTask(const WorkloadContext& ctx, uint64_t sequence, absl::string_view tag,
                std::function<void(const std::string&)> created, Done done) {
  v1::CreateTaskRequest request;
  request.set_patient_id(absl::StrCat("patient-", sequence % 50000));
  request.set_kind(v1::MANUAL);
  request.set_title("Schedule annual wellness visit");
  request.set_assignee(absl::StrCat("agent-", sequence % 16));
  request.set_follow_up_date(Date(ctx.tomorrow_utc + static_cast<int>(sequence % 30)));
  if (ctx.request_ids) request.set_request_id(absl::StrCat(ctx.run_nonce, "-", tag, sequence));
  auto& stub = ctx.connections->tasks(sequence);
  StartCall<v1::CreateTaskRequest, v1::Task>(
      ctx, [&stub](auto* context, auto* request, auto* response, auto callback) {
        stub.async()->CreateTask(context, request, response, std::move(callback));
      },
      std::move(request),
      [created = std::move(created), done = std::move(done)](const grpc::Status& status,
                                                             v1::Task& task) {
        if (status.ok() && created) created(task.task_id());
        done(status, {});
      });
}

void LogContact(const WorkloadContext& ctx, uint64_t sequence, absl::string_view tag,
                const std::string& task_id, bool close, Done done) {
  static constexpr v1::ContactOutcome kOutcomes[] = {v1::NO_ANSWER, v1::LEFT_MESSAGE,
                                                     v1::DID_NOT_SCHEDULE};
  v1::LogContactRequest request;
  request.set_task_id(task_id);
  if (close) {
    request.set_outcome(v1::SCHEDULED);
    request.set_close_task(true);
    request.set_notes("Booked for next Tuesday.");
  } else {
    request.set_outcome(kOutcomes[sequence % 3]);
    request.set_notes("Called the mobile number; will try again.");
    request.set_follow_up_date(Date(ctx.tomorrow_utc + static_cast<int>(sequence % 28)));
  }
  if (ctx.request_ids) request.set_request_id(absl::StrCat(ctx.run_nonce, "-", tag, sequence));
  auto& stub = ctx.connections->tasks(sequence);
  StartCall<v1::LogContactRequest, v1::Task>(
      ctx, [&stub](auto* context, auto* request, auto* response, auto callback) {
        stub.async()->LogContact(context, request, response, std::move(callback));
      },
      std::move(request),
      [done = std::move(done)](const grpc::Status& status, v1::Task&) { done(status, {}); });
}

void GetTask(const WorkloadContext& ctx, uint64_t sequence, const std::string& task_id,
             Done done) {
  v1::GetTaskRequest request;
  request.set_task_id(task_id);
  auto& stub = ctx.connections->tasks(sequence);
  StartCall<v1::GetTaskRequest, v1::Task>(
      ctx, [&stub](auto* context, auto* request, auto* response, auto callback) {
        stub.async()->GetTask(context, request, response, std::move(callback));
      },
      std::move(request),
      [done = std::move(done)](const grpc::Status& status, v1::Task&) { done(status, {}); });
}

class BaselineWorkload final : public Workload {
 public:
  explicit BaselineWorkload(const WorkloadContext& ctx) : ctx_(ctx) {}
  void Issue(uint64_t sequence, Done done) override {
    CheckHealth(ctx_, sequence, std::move(done));
  }

 private:
  const WorkloadContext ctx_;
};

class CreateWorkload final : public Workload {
 public:
  explicit CreateWorkload(const WorkloadContext& ctx) : ctx_(ctx) {}
  void Issue(uint64_t sequence, Done done) override {
    CreateTask(ctx_, sequence, "create", nullptr, std::move(done));
  }

 private:
  const WorkloadContext ctx_;
};

class LogContactWorkload final : public Workload {
 public:
  LogContactWorkload(const WorkloadContext& ctx, const OpenTasks& tasks)
      : ctx_(ctx), tasks_(tasks) {}
  void Issue(uint64_t sequence, Done done) override {
    LogContact(ctx_, sequence, "contact", tasks_.at(sequence), /*close=*/false, std::move(done));
  }

 private:
  const WorkloadContext ctx_;
  const OpenTasks& tasks_;
};

// Closes a pooled task; when the pool is empty, creates one first and reports the create's
// time as untimed, so that the latency and the ratio stay those of the close.
class LogAndCloseWorkload final : public Workload {
 public:
  LogAndCloseWorkload(const WorkloadContext& ctx, ClosePool& pool) : ctx_(ctx), pool_(pool) {}
  void Issue(uint64_t sequence, Done done) override {
    std::string task_id;
    if (pool_.Pop(&task_id)) {
      LogContact(ctx_, sequence, "close", task_id, /*close=*/true, std::move(done));
      return;
    }
    pool_.CountInlineCreate();
    const SteadyClock::time_point create_started = SteadyClock::now();
    auto created_id = std::make_shared<std::string>();
    CreateTask(ctx_, sequence, "close-create",
               [created_id](const std::string& id) { *created_id = id; },
               [this, sequence, create_started, created_id, done = std::move(done)](
                   const grpc::Status& status, SteadyClock::duration) {
                 if (!status.ok()) {
                   done(status, {});
                   return;
                 }
                 const SteadyClock::duration untimed = SteadyClock::now() - create_started;
                 LogContact(ctx_, sequence, "close", *created_id, /*close=*/true,
                            [untimed, done](const grpc::Status& close_status,
                                            SteadyClock::duration) { done(close_status, untimed); });
               });
  }

 private:
  const WorkloadContext ctx_;
  ClosePool& pool_;
};

class ListWorkload final : public Workload {
 public:
  explicit ListWorkload(const WorkloadContext& ctx) : ctx_(ctx) {}
  void Issue(uint64_t sequence, Done done) override {
    v1::ListTasksRequest request;
    request.set_page_size(50);
    if (sequence % 4 != 0) {
      absl::MutexLock lock(&mu_);
      request.set_page_token(next_token_);
    }
    auto& stub = ctx_.connections->tasks(sequence);
    StartCall<v1::ListTasksRequest, v1::ListTasksResponse>(
        ctx_, [&stub](auto* context, auto* request, auto* response, auto callback) {
          stub.async()->ListTasks(context, request, response, std::move(callback));
        },
        std::move(request),
        [this, done = std::move(done)](const grpc::Status& status,
                                       v1::ListTasksResponse& response) {
          if (status.ok()) {
            absl::MutexLock lock(&mu_);
            next_token_ = response.next_page_token();
          }
          done(status, {});
        });
  }

 private:
  const WorkloadContext ctx_;
  absl::Mutex mu_;
  std::string next_token_ ABSL_GUARDED_BY(mu_);  // empty = the first page
};

class MixedWorkload final : public Workload {
 public:
  MixedWorkload(const WorkloadContext& ctx, const OpenTasks& tasks)
      : ctx_(ctx), tasks_(tasks), list_(ctx) {}
  void Issue(uint64_t sequence, Done done) override {
    const uint64_t slot = sequence % 20;
    if (slot < 3) {  // 15% create; the new task may be closed later in the run
      CreateTask(ctx_, sequence, "mixed-create",
                 [this](const std::string& id) { created_.Push(id); }, std::move(done));
      return;
    }
    std::string to_close;
    if (slot < 5 && created_.Pop(&to_close)) {  // 10% close (a contact when none is waiting)
      LogContact(ctx_, sequence, "mixed-close", to_close, /*close=*/true, std::move(done));
    } else if (slot < 14) {  // 45% contact
      LogContact(ctx_, sequence, "mixed-contact", tasks_.at(sequence), /*close=*/false,
                 std::move(done));
    } else if (slot < 19) {  // 25% list
      list_.Issue(sequence, std::move(done));
    } else {  // 5% get
      GetTask(ctx_, sequence, tasks_.at(sequence * 7919), std::move(done));
    }
  }

 private:
  const WorkloadContext ctx_;
  const OpenTasks& tasks_;
  ClosePool created_;
  ListWorkload list_;
};

class PreloadWorkload final : public Workload {
 public:
  PreloadWorkload(const WorkloadContext& ctx, OpenTasks* open_tasks, ClosePool* close_pool)
      : ctx_(ctx), open_tasks_(open_tasks), close_pool_(close_pool) {}
  void Issue(uint64_t sequence, Done done) override {
    CreateTask(ctx_, sequence, open_tasks_ != nullptr ? "preload" : "preload-close",
               [this](const std::string& id) {
                 if (open_tasks_ != nullptr) open_tasks_->Add(id);
                 if (close_pool_ != nullptr) close_pool_->Push(id);
               },
               std::move(done));
  }

 private:
  const WorkloadContext ctx_;
  OpenTasks* const open_tasks_;
  ClosePool* const close_pool_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Connections>> Connections::Open(const std::string& target,
                                                               int channels) {
  std::string address = target;
  if (absl::StartsWith(address, "localhost:")) {
    address = absl::StrCat("127.0.0.1:", address.substr(std::string("localhost:").size()));
  }
  int port = 0;
  if (!absl::StartsWith(address, "127.0.0.1:") ||
      !absl::SimpleAtoi(address.substr(std::string("127.0.0.1:").size()), &port) || port <= 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--target: \"", target, "\" must be 127.0.0.1:PORT or localhost:PORT (loopback only)"));
  }
  if (channels < 1) return absl::InvalidArgumentError("--channels: must be at least 1");
  auto connections = std::unique_ptr<Connections>(new Connections());
  for (int i = 0; i < channels; ++i) {
    grpc::ChannelArguments args;
    // A distinct argument per channel, and no global subchannel pool: one TCP connection each.
    args.SetInt("outreach.load.channel_index", i);
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
    auto channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
    connections->health_.push_back(grpc::health::v1::Health::NewStub(channel));
    connections->tasks_.push_back(v1::TaskService::NewStub(channel));
    connections->channels_.push_back(std::move(channel));
  }
  return connections;
}

bool Connections::WaitConnected(absl::Duration timeout) {
  const auto deadline = std::chrono::system_clock::now() + absl::ToChronoNanoseconds(timeout);
  for (auto& channel : channels_) {
    if (!channel->WaitForConnected(deadline)) return false;
  }
  return true;
}

void OpenTasks::Add(std::string task_id) {
  absl::MutexLock lock(&mu_);
  adding_.push_back(std::move(task_id));
}

void OpenTasks::Freeze() {
  absl::MutexLock lock(&mu_);
  frozen_ = std::move(adding_);
  adding_.clear();
}

void ClosePool::Push(std::string task_id) {
  absl::MutexLock lock(&mu_);
  ids_.push_back(std::move(task_id));
}

bool ClosePool::Pop(std::string* task_id) {
  absl::MutexLock lock(&mu_);
  if (ids_.empty()) return false;
  *task_id = std::move(ids_.front());
  ids_.pop_front();
  return true;
}

std::size_t ClosePool::size() const {
  absl::MutexLock lock(&mu_);
  return ids_.size();
}

const std::vector<std::string>& ScenarioNames() {
  static const auto* names = new std::vector<std::string>{
      "baseline", "create", "log_contact", "log_and_close", "list", "mixed"};
  return *names;
}

absl::StatusOr<std::unique_ptr<Workload>> MakeWorkload(const std::string& scenario,
                                                       const WorkloadContext& context,
                                                       const OpenTasks* open_tasks,
                                                       ClosePool* close_pool) {
  const bool needs_tasks = scenario == "log_contact" || scenario == "mixed";
  if (needs_tasks && (open_tasks == nullptr || open_tasks->size() == 0)) {
    return absl::FailedPreconditionError(
        absl::StrCat(scenario, " needs preloaded tasks (--preload_tasks > 0)"));
  }
  if (scenario == "baseline") return std::make_unique<BaselineWorkload>(context);
  if (scenario == "create") return std::make_unique<CreateWorkload>(context);
  if (scenario == "log_contact") return std::make_unique<LogContactWorkload>(context, *open_tasks);
  if (scenario == "log_and_close") {
    if (close_pool == nullptr) return absl::InvalidArgumentError("log_and_close needs a pool");
    return std::make_unique<LogAndCloseWorkload>(context, *close_pool);
  }
  if (scenario == "list") return std::make_unique<ListWorkload>(context);
  if (scenario == "mixed") return std::make_unique<MixedWorkload>(context, *open_tasks);
  return absl::InvalidArgumentError(
      absl::StrCat("--scenario: unknown scenario \"", scenario,
                   "\" (want baseline, create, log_contact, log_and_close, list, mixed or all)"));
}

std::unique_ptr<Workload> MakePreloadWorkload(const WorkloadContext& context,
                                              OpenTasks* open_tasks, ClosePool* close_pool) {
  return std::make_unique<PreloadWorkload>(context, open_tasks, close_pool);
}

}  // namespace outreach::load
