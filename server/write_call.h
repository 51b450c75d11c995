// The steps every write RPC takes around the store's writer, shared by TaskService and
// PatientService, so that a new write RPC cannot leave one out:
//   before: authorize the caller for the method (server/call_security.h); refuse on a server
//     started read-only for investigation (FAILED_PRECONDITION kReadOnlyInvestigation, before
//     looking at the request); fingerprint the request (what its request id stands for);
//     translate it into the domain command (server/convert.h); stamp the caller's on-behalf-of
//     and practices on the command, so the rules decide with them; check the route the call
//     took (x-practice-id, CheckRoute in server/auth.h) against the practice the request names
//     or, for a request naming a task, the task's practice: INVALID_ARGUMENT before any write;
//   after an UNAVAILABLE result: when the store has latched a write error
//     (EventStore::WriteHealth), report it through on_writes_refused, on the store's completion
//     thread, before the call finishes (so health changes before the client hears of it). The
//     check costs nothing on the success path.
// Immutable after construction; thread-safe. The store and the CallSecurity must outlive it.
#pragma once

#include <functional>
#include <string>
#include <utility>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/call_security.h"
#include "server/convert.h"
#include "store/event_store.h"

namespace outreach::server {

// The message of every mutation refused by a server started read-only for investigation.
inline constexpr char kReadOnlyInvestigation[] = "server started read-only for investigation";

// Called with EventStore::WriteHealth() after a write the store refused; it must be cheap and
// must not wait on the store. May be empty.
using WritesRefusedCallback = std::function<void(const absl::Status& why)>;

struct WriteOptions {
  WritesRefusedCallback on_writes_refused;  // may be empty
  bool read_only_investigation = false;     // refuse every mutation
};

// A write request made ready for EventStore::Submit.
template <class Command>
struct PreparedWrite {
  Caller caller;
  Command command;
  std::string fingerprint;
};

// The domain command ToCommand makes of a request.
template <class Request>
using CommandOf = typename decltype(ToCommand(std::declval<const Request&>(),
                                              std::string()))::value_type;

class WriteCalls {
 public:
  WriteCalls(store::EventStore* store, const CallSecurity* security, WriteOptions options)
      : store_(store),
        security_(security),
        on_writes_refused_(std::move(options.on_writes_refused)),
        read_only_investigation_(options.read_only_investigation) {}
  WriteCalls(const WriteCalls&) = delete;
  WriteCalls& operator=(const WriteCalls&) = delete;

  // The "before" steps; the first refusal (its code and message as the caller gets them).
  template <class Request>
  absl::StatusOr<PreparedWrite<CommandOf<Request>>> Prepare(
      const grpc::CallbackServerContext& context, absl::string_view method,
      const Request& request) const {
    absl::StatusOr<Caller> caller = security_->Authorize(context, method);
    if (!caller.ok()) return caller.status();
    if (read_only_investigation_) {
      return absl::FailedPreconditionError(kReadOnlyInvestigation);
    }
    std::string fingerprint =
        Fingerprint(method, caller->principal, request, caller->on_behalf_of);
    absl::StatusOr<CommandOf<Request>> command = ToCommand(request, caller->principal);
    if (!command.ok()) return command.status();
    command->meta.on_behalf_of = caller->on_behalf_of;
    command->meta.practices = caller->practices;
    if (absl::Status s = CheckRequestRoute(*caller, request); !s.ok()) return s;
    return PreparedWrite<CommandOf<Request>>{*std::move(caller), *std::move(command),
                                             std::move(fingerprint)};
  }

  // The "after" step, for a write that came back with `result` (not OK).
  void NoteRefused(const absl::Status& result) const {
    if (!absl::IsUnavailable(result) || !on_writes_refused_) return;
    // UNAVAILABLE also means "shutting down"; only a latched write error changes health.
    if (absl::Status why = store_->WriteHealth(); !why.ok()) on_writes_refused_(why);
  }

 private:
  // CheckRoute with the practice `request` names, or with the practice of the task it names
  // (a task that does not exist passes: the command then says NOT_FOUND). A task's practice
  // never changes, so the read leaves no window before the write.
  template <class Request>
  absl::Status CheckRequestRoute(const Caller& caller, const Request& request) const {
    if (caller.routed_practice.empty()) return absl::OkStatus();
    if constexpr (requires { request.practice_id(); }) {
      return CheckRoute(caller, request.practice_id());
    } else {
      absl::StatusOr<v1::Task> task = store_->GetTask(request.task_id());
      if (absl::IsNotFound(task.status())) return absl::OkStatus();
      if (!task.ok()) return task.status();
      return CheckRoute(caller, task->practice_id());
    }
  }

  store::EventStore* const store_;
  const CallSecurity* const security_;
  const WritesRefusedCallback on_writes_refused_;
  const bool read_only_investigation_;
};

}  // namespace outreach::server
