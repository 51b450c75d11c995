#include "server/call_observer.h"

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "logging/log.h"
#include "server/grpc_status.h"

namespace outreach::server {
namespace {

using grpc::experimental::InterceptionHookPoints;

// The only request fields a log line may quote: ids, never content.
constexpr char kTaskIdField[] = "task_id";
constexpr char kRequestIdField[] = "request_id";

// A singular string field of `message` named `name`, or "" if it has none.
std::string StringField(const google::protobuf::Message& message, const char* name) {
  const google::protobuf::FieldDescriptor* field =
      message.GetDescriptor()->FindFieldByName(name);
  if (field == nullptr || field->is_repeated() ||
      field->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_STRING) {
    return "";
  }
  return message.GetReflection()->GetString(message, field);
}

}  // namespace

// One call's observer: registered with its CallObserver from creation until its status is sent.
class CallInterceptor final : public grpc::experimental::Interceptor {
 public:
  CallInterceptor(CallObserver* observer, grpc::experimental::ServerRpcInfo* info)
      : observer_(observer),
        context_(info->server_context()),
        method_(info->method() != nullptr ? info->method() : "unknown"),
        started_(absl::Now()),
        // Only our own services' requests are protobuf messages we know to read (gRPC's health
        // service receives raw bytes).
        reads_request_(absl::StartsWith(method_, "/outreach.v1.")),
        series_(observer->rpc_metrics_ != nullptr ? observer->rpc_metrics_->ForMethod(method_)
                                                  : nullptr) {
    observer_->Register(context_, &call_);
  }

  ~CallInterceptor() override {
    // A call torn down without a status sent (the server's shutdown cancelled it).
    // The context is being destroyed: its peer is not read.
    if (!finished_) Finish(grpc::StatusCode::CANCELLED, /*context_alive=*/false);
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (reads_request_ &&
        methods->QueryInterceptionHookPoint(InterceptionHookPoints::POST_RECV_MESSAGE)) {
      ReadRequest(methods->GetRecvMessage());
    }
    if (methods->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      Finish(methods->GetSendStatus().error_code(), /*context_alive=*/true);
    }
    methods->Proceed();
  }

 private:
  void ReadRequest(void* received) {
    if (received == nullptr || read_) return;
    read_ = true;
    // gRPC hands the deserialized request of our generated handlers: a protobuf message.
    const auto& message = *static_cast<const google::protobuf::Message*>(received);
    task_id_ = StringField(message, kTaskIdField);
    request_id_ = StringField(message, kRequestIdField);
  }

  void Finish(grpc::StatusCode code, bool context_alive) {
    finished_ = true;
    const absl::Duration duration = absl::Now() - started_;
    observer_->Unregister(context_);  // after this, call_ is ours alone
    if (series_ != nullptr) series_->Record(code, duration);
    if (!logging::Enabled(logging::Level::kInfo)) return;
    logging::Info("request", {{"method", method_},
                              {"code", CodeName(code)},
                              {"duration_ms", absl::ToDoubleMilliseconds(duration)},
                              {"principal", call_.principal},
                              {"on_behalf_of", call_.on_behalf_of},
                              {"request_id", request_id_},
                              {"task_id", task_id_},
                              {"peer", context_alive ? context_->peer() : std::string()}});
  }

  CallObserver* const observer_;
  grpc::ServerContextBase* const context_;
  const absl::string_view method_;
  const absl::Time started_;
  const bool reads_request_;
  RpcMetrics::Method* const series_;
  CallObserver::Call call_;
  bool read_ = false;
  bool finished_ = false;
  std::string task_id_;
  std::string request_id_;
};

namespace {

class Factory final : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit Factory(CallObserver* observer) : observer_(observer) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override {
    return new CallInterceptor(observer_, info);
  }

 private:
  CallObserver* const observer_;
};

}  // namespace

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> CallObserver::NewFactory() {
  return std::make_unique<Factory>(this);
}

CallObserver::Shard& CallObserver::ShardOf(const grpc::ServerContextBase* context) {
  const std::size_t h = std::hash<const void*>()(context);
  return shards_[(h >> 6) % kShards];
}

void CallObserver::Register(const grpc::ServerContextBase* context, Call* call) {
  Shard& shard = ShardOf(context);
  absl::MutexLock lock(&shard.mu);
  shard.calls[context] = call;
}

void CallObserver::Unregister(const grpc::ServerContextBase* context) {
  Shard& shard = ShardOf(context);
  absl::MutexLock lock(&shard.mu);
  shard.calls.erase(context);
}

void CallObserver::NoteCaller(const grpc::ServerContextBase* context, absl::string_view principal,
                              absl::string_view on_behalf_of) {
  Shard& shard = ShardOf(context);
  absl::MutexLock lock(&shard.mu);
  auto it = shard.calls.find(context);
  if (it == shard.calls.end()) return;
  it->second->principal = std::string(principal);
  it->second->on_behalf_of = std::string(on_behalf_of);
}

}  // namespace outreach::server
