// `outreachctl backup --server`: calls AdminService.CreateBackup on a running outreachd, with an
// admin principal's bearer token and optionally TLS. The only part of outreachctl that speaks
// gRPC (as a client, through the generated stub); everything else works on directories.
#pragma once

#include "absl/status/statusor.h"
#include "ctl/command_flags.h"
#include "outreach/v1/admin_service.pb.h"

namespace outreach::ctl {

// The server's answer, or its refusal with the gRPC code carried over one to one
// (UNAUTHENTICATED, PERMISSION_DENIED, FAILED_PRECONDITION, ABORTED, UNAVAILABLE...). A token or
// CA file that cannot be read: FAILED_PRECONDITION before any call. Gives up after 10 minutes.
absl::StatusOr<v1::CreateBackupResponse> CreateBackupOnServer(const BackupFlags& flags);

}  // namespace outreach::ctl
