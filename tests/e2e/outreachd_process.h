// Helpers for end-to-end tests that run the real outreachd binary: a free loopback port, a
// channel that reconnects quickly, and Daemon, one outreachd process started with fork/exec.
//
// The including target defines OUTREACHD_PATH (the binary, $<TARGET_FILE:outreachd>). Everything
// here talks to 127.0.0.1 only. Daemon is not thread-safe: one test thread drives it.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"

#ifndef OUTREACHD_PATH
#error "OUTREACHD_PATH must name the outreachd binary"
#endif

namespace outreach::e2e {

// A loopback port that was free a moment ago (the kernel hands out a fresh one each time); 0 if
// none could be had.
inline int FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return 0;
  }
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

// A channel that retries a refused connection within ~200ms (the default backoff starts at 1s
// and grows, which would make every start-up wait seconds).
inline std::shared_ptr<grpc::Channel> Connect(const std::string& address) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 50);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 200);
  // Not shared with other channels (and their backoff state) through the global pool.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
}

// One outreachd process on `db`, listening on 127.0.0.1:`port`. Its stdout and stderr go to
// `log_path` (appended across restarts). The log is text (--log-format=text), which the tests
// read for outreachd's messages, unless `extra` names a --log-format. The destructor SIGKILLs a
// process still running.
class Daemon {
 public:
  Daemon(std::string db, int port, std::string log_path, std::vector<std::string> extra = {})
      : db_(std::move(db)),
        address_(absl::StrCat("127.0.0.1:", port)),
        log_path_(std::move(log_path)),
        extra_(std::move(extra)) {}
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  ~Daemon() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  const std::string& address() const { return address_; }
  bool running() const { return pid_ > 0; }
  // The process id while running, else 0 (for /proc/PID/status).
  pid_t pid() const { return pid_; }

  void Start() {
    ASSERT_EQ(pid_, 0) << "already running";
    // Everything the child needs is built before fork: after it, only exec-safe calls.
    std::vector<std::string> args = {OUTREACHD_PATH, "--db=" + db_, "--listen=" + address_};
    if (std::none_of(extra_.begin(), extra_.end(), [](const std::string& arg) {
          return arg.rfind("--log-format", 0) == 0 || arg.rfind("--log_format", 0) == 0;
        })) {
      args.push_back("--log-format=text");
    }
    args.insert(args.end(), extra_.begin(), extra_.end());
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const int log_fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    ASSERT_GE(log_fd, 0);
    const pid_t pid = fork();
    if (pid == 0) {
      // Dies with the test process, so that a crashed test leaves no server behind.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      dup2(log_fd, STDERR_FILENO);
      dup2(log_fd, STDOUT_FILENO);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(log_fd);
    ASSERT_GT(pid, 0);
    pid_ = pid;
  }

  // Polls gRPC health until the server reports SERVING. False if it exits or times out.
  bool WaitServing(absl::Duration timeout = absl::Seconds(20)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      // A fresh channel each time: no reconnect backoff carried over from refused attempts.
      auto stub = grpc::health::v1::Health::NewStub(Connect(address_));
      if (pid_ > 0 && waitpid(pid_, &exit_status_, WNOHANG) == pid_) {
        pid_ = 0;
        return false;
      }
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
      grpc::health::v1::HealthCheckResponse response;
      if (stub->Check(&context, grpc::health::v1::HealthCheckRequest(), &response).ok() &&
          response.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
        return true;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  // Sends `signal` and waits for the process; returns its wait status.
  int Stop(int signal) {
    if (pid_ <= 0) return exit_status_;
    kill(pid_, signal);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = 0;
    exit_status_ = status;
    return status;
  }

  // Sends `signal` without waiting (SIGHUP: re-read the principals file).
  void Signal(int signal) {
    if (pid_ > 0) kill(pid_, signal);
  }

  // Polls the log until it holds `text` (true), or `timeout` passes (false).
  bool WaitForLog(const std::string& text, absl::Duration timeout = absl::Seconds(10)) const {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (Log().find(text) != std::string::npos) return true;
      absl::SleepFor(absl::Milliseconds(20));
    }
    return false;
  }

  // Waits for a process that is expected to exit by itself; returns its wait status, or -1 on
  // timeout.
  int WaitExit(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (waitpid(pid_, &exit_status_, WNOHANG) == pid_) {
        pid_ = 0;
        return exit_status_;
      }
      absl::SleepFor(absl::Milliseconds(20));
    }
    return -1;
  }

  std::string Log() const {
    std::ifstream in(log_path_);
    std::stringstream out;
    out << in.rdbuf();
    return out.str();
  }

 private:
  const std::string db_;
  const std::string address_;
  const std::string log_path_;
  const std::vector<std::string> extra_;
  pid_t pid_ = 0;
  int exit_status_ = 0;
};

}  // namespace outreach::e2e
