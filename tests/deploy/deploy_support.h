// What the deployment tests share: running a real tool (podman, systemd-analyze, kubectl,
// yamllint, node) and collecting its exit code and output; podman's configuration for machines
// like CI's; polling gRPC health through a published port. Header-only; not thread-safe.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "openssl/sha.h"

extern char** environ;

namespace outreach::deploy {

#ifndef OUTREACH_SOURCE_DIR
#error "OUTREACH_SOURCE_DIR must name the source tree"
#endif
inline constexpr char kSourceDir[] = OUTREACH_SOURCE_DIR;

struct ToolRun {
  int exit_code = -1;  // -1: could not start, killed, or timed out
  std::string output;  // stdout and stderr, interleaved
  std::string Describe(const std::vector<std::string>& args) const {
    return absl::StrCat("$ ", absl::StrJoin(args, " "), "\n-> exit ", exit_code, "\n", output);
  }
};

// Runs `args` (args[0] looked up in PATH), stdin from /dev/null, output to `scratch`/tool.out;
// kills it after `timeout`.
inline ToolRun RunTool(const std::vector<std::string>& args, const std::string& scratch,
                       absl::Duration timeout = absl::Seconds(120)) {
  std::vector<std::string> copy = args;
  std::vector<char*> argv;
  for (std::string& arg : copy) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const std::string out_path = scratch + "/tool.out";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  pid_t pid = 0;
  ToolRun run;
  const int spawned = posix_spawnp(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (spawned != 0) {
    run.output = absl::StrCat("cannot run ", args[0]);
    return run;
  }
  const absl::Time deadline = absl::Now() + timeout;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (absl::Now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      run.output = "(timed out) ";
      break;
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  if (WIFEXITED(status) && run.output.empty()) run.exit_code = WEXITSTATUS(status);
  std::ifstream in(out_path);
  std::stringstream text;
  text << in.rdbuf();
  run.output += text.str();
  return run;
}

// SHA-256 in hex: a principals file's token_sha256.
inline std::string Sha256Hex(absl::string_view text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  return absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

inline std::string Trimmed(const std::string& text) {
  return std::string(absl::StripAsciiWhitespace(text));
}

// podman as it works on machines like CI's (2 cores, root, cgroup v1 or v2, no image registry):
// runc, cgroupfs, the file events logger, and default ulimits within the machine's hard limits
// (runc fails to raise RLIMIT_NOFILE above them: "error setting rlimit type 7"). Written to
// `dir`/containers.conf and named in CONTAINERS_CONF for every podman this process starts.
inline void ConfigurePodman(const std::string& dir) {
  const std::string path = dir + "/containers.conf";
  std::ofstream(path) << "[containers]\n"
                         "default_ulimits = [\"nofile=4096:4096\", \"nproc=4096:4096\"]\n"
                         "[engine]\n"
                         "runtime = \"runc\"\n"
                         "cgroup_manager = \"cgroupfs\"\n"
                         "events_logger = \"file\"\n";
  setenv("CONTAINERS_CONF", path.c_str(), 1);
}

// The image `make test-deploy` built (OUTREACH_IMAGE); empty when the variable is not set.
inline std::string ImageUnderTest() {
  const char* image = getenv("OUTREACH_IMAGE");
  return image == nullptr ? "" : image;
}

// Polls grpc.health.v1 Check of `service` at `address` until SERVING (true) or `timeout`.
inline bool WaitServing(const std::string& address, const std::string& service,
                        absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    auto stub = grpc::health::v1::Health::NewStub(
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(service);
    grpc::health::v1::HealthCheckResponse response;
    if (stub->Check(&context, request, &response).ok() &&
        response.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
      return true;
    }
    absl::SleepFor(absl::Milliseconds(100));
  }
  return false;
}

}  // namespace outreach::deploy
