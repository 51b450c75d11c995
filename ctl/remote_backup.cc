#include "ctl/remote_backup.h"

#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "outreach/v1/admin_service.grpc.pb.h"

namespace outreach::ctl {
namespace {

constexpr std::chrono::minutes kDeadline(10);

absl::StatusOr<std::string> ReadFile(absl::string_view flag, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (in) text << in.rdbuf();
  if (!in || text.str().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("--", flag, ": cannot read \"", path, "\" (or it is empty)"));
  }
  return text.str();
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> Credentials(const BackupFlags& flags) {
  if (flags.tls_ca.empty()) return grpc::InsecureChannelCredentials();
  absl::StatusOr<std::string> ca = ReadFile("tls-ca", flags.tls_ca);
  if (!ca.ok()) return ca.status();
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = *std::move(ca);
  return grpc::SslCredentials(options);
}

}  // namespace

absl::StatusOr<v1::CreateBackupResponse> CreateBackupOnServer(const BackupFlags& flags) {
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials = Credentials(flags);
  if (!credentials.ok()) return credentials.status();
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + kDeadline);
  if (!flags.token_file.empty()) {
    absl::StatusOr<std::string> token = ReadFile("token-file", flags.token_file);
    if (!token.ok()) return token.status();
    const std::string first_line = token->substr(0, token->find('\n'));
    context.AddMetadata("authorization",
                        absl::StrCat("Bearer ", absl::StripAsciiWhitespace(first_line)));
  }
  auto stub = v1::AdminService::NewStub(grpc::CreateChannel(flags.server, *credentials));
  v1::CreateBackupResponse response;
  const grpc::Status status = stub->CreateBackup(&context, v1::CreateBackupRequest(), &response);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                        status.error_message());
  }
  return response;
}

}  // namespace outreach::ctl
