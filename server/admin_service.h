// AdminService (outreach.v1): operations on the running server, for the admin role.
//
// CreateBackup adds a BackupEngine backup of the live store to ServerOptions::backup_dir while
// writes go on (store::EventStore::BackupLive: the WAL synced, the live files and WAL copied and
// checksummed, then all but the newest `backup_keep` backups deleted). The copy takes seconds to
// minutes, so it runs on a thread of this service, never on gRPC's: the handler returns at once
// and the thread finishes the call. One backup at a time (a BackupEngine directory has one
// writer): a call while one runs is ABORTED. Refusals: FAILED_PRECONDITION without a backup
// directory or on a store opened read-only (a read-only investigation). The destructor waits for
// a running backup, so the store outlives every copy of it.
//
// The store and the CallSecurity must outlive the service. Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "outreach/v1/admin_service.grpc.pb.h"
#include "server/call_security.h"
#include "store/event_store.h"

namespace outreach::server {

class AdminService final : public v1::AdminService::CallbackService {
 public:
  struct Options {
    std::string backup_dir;    // empty: CreateBackup is FAILED_PRECONDITION
    uint32_t backup_keep = 7;  // backups kept after each one (0: every one)
  };

  AdminService(store::EventStore* store, const CallSecurity* security, Options options)
      : store_(store), security_(security), options_(std::move(options)) {}
  AdminService(const AdminService&) = delete;
  AdminService& operator=(const AdminService&) = delete;
  ~AdminService();

  grpc::ServerUnaryReactor* CreateBackup(grpc::CallbackServerContext* context,
                                         const v1::CreateBackupRequest* request,
                                         v1::CreateBackupResponse* response) override;

 private:
  // On the backup thread: backs up, fills `response`, finishes `reactor`.
  void RunBackup(grpc::ServerUnaryReactor* reactor, v1::CreateBackupResponse* response)
      ABSL_LOCKS_EXCLUDED(mu_);

  store::EventStore* const store_;
  const CallSecurity* const security_;
  const Options options_;

  absl::Mutex mu_;
  bool running_ ABSL_GUARDED_BY(mu_) = false;
  std::thread worker_ ABSL_GUARDED_BY(mu_);  // the last backup's thread (joined by the next)
};

}  // namespace outreach::server
