#include "server/admin_service.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "logging/log.h"
#include "server/grpc_status.h"

namespace outreach::server {
namespace {

constexpr absl::string_view kCreateBackupMethod = "/outreach.v1.AdminService/CreateBackup";

void ToResponse(const store::BackupSummary& summary, uint64_t covers_through,
                v1::CreateBackupResponse* response) {
  response->set_backup_id(summary.backup_id);
  response->set_covers_through_position(covers_through);
  response->set_size_bytes(summary.size_bytes);
  response->set_file_count(summary.file_count);
  const int64_t seconds = absl::ToUnixSeconds(summary.created_at);
  response->mutable_created_at()->set_seconds(seconds);
  for (uint32_t id : summary.kept_backup_ids) response->add_kept_backup_ids(id);
}

}  // namespace

AdminService::~AdminService() {
  std::thread worker;
  {
    absl::MutexLock lock(&mu_);
    worker = std::move(worker_);
  }
  if (worker.joinable()) worker.join();
}

grpc::ServerUnaryReactor* AdminService::CreateBackup(grpc::CallbackServerContext* context,
                                                     const v1::CreateBackupRequest* /*request*/,
                                                     v1::CreateBackupResponse* response) {
  absl::StatusOr<Caller> caller = security_->Authorize(*context, kCreateBackupMethod);
  if (!caller.ok()) return FinishNow(context, caller.status());
  if (options_.backup_dir.empty()) {
    return FinishNow(context, absl::FailedPreconditionError(
                                  "backup: the server has no --backup-dir to back up into"));
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::thread previous;
  {
    absl::MutexLock lock(&mu_);
    if (running_) {
      reactor->Finish(ToGrpcStatus(absl::AbortedError(
          "backup: another backup is running; call again once it has finished")));
      return reactor;
    }
    running_ = true;
    previous = std::move(worker_);  // finished: running_ was false
  }
  if (previous.joinable()) previous.join();
  logging::Info(absl::StrFormat("backup requested by %s into %s", caller->principal,
                                options_.backup_dir));
  absl::MutexLock lock(&mu_);
  worker_ = std::thread([this, reactor, response] { RunBackup(reactor, response); });
  return reactor;
}

void AdminService::RunBackup(grpc::ServerUnaryReactor* reactor,
                             v1::CreateBackupResponse* response) {
  // Published heads are durable and in the WAL that BackupLive syncs before copying.
  const uint64_t covers_through = store_->HeadPosition();
  absl::StatusOr<store::BackupSummary> summary =
      store_->BackupLive(options_.backup_dir, options_.backup_keep);
  if (summary.ok()) {
    ToResponse(*summary, covers_through, response);
    logging::Info(absl::StrFormat(
        "backup %d into %s: %d files, %d bytes, covers through position %d; kept backups %s",
        summary->backup_id, options_.backup_dir, summary->file_count, summary->size_bytes,
        covers_through, absl::StrJoin(summary->kept_backup_ids, ",")));
  } else {
    logging::Error(absl::StrFormat("backup into %s failed: %s", options_.backup_dir,
                                   summary.status().ToString()));
  }
  {
    absl::MutexLock lock(&mu_);
    running_ = false;
  }
  reactor->Finish(ToGrpcStatus(summary.status()));
}

}  // namespace outreach::server
