// NginxProxy: Debian's /usr/sbin/nginx started by a test, in front of an outreachd, with the
// project's configuration (deploy/nginx/outreach-grpc.conf) rendered into a temporary directory:
// its own pid file, logs and temporary files there, listening on a loopback port. Never the
// system service. The destructor stops it (SIGTERM to the master, which stops its worker).
//
// The including target defines OUTREACH_SOURCE_DIR. Not thread-safe.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "tests/server/raw_http2.h"

#ifndef OUTREACH_SOURCE_DIR
#error "OUTREACH_SOURCE_DIR must name the source tree"
#endif

namespace outreach::e2e {

inline constexpr char kNginxPath[] = "/usr/sbin/nginx";
inline constexpr char kNginxTemplate[] = OUTREACH_SOURCE_DIR "/deploy/nginx/outreach-grpc.conf";

class NginxProxy {
 public:
  // `dir`: an empty directory of the test's; `port`: where nginx listens; `upstream`: outreachd.
  NginxProxy(std::string dir, int port, std::string upstream)
      : NginxProxy(std::move(dir), port, kNginxTemplate, {{"@UPSTREAM@", std::move(upstream)}}) {}
  // Another configuration template (e.g. deploy/router/outreach-router.conf): `replacements`
  // are its placeholders other than @PREFIX@ (= `dir`) and @LISTEN@, which are filled in here.
  NginxProxy(std::string dir, int port, std::string template_path,
             std::vector<std::pair<std::string, std::string>> replacements)
      : dir_(std::move(dir)),
        port_(port),
        template_path_(std::move(template_path)),
        replacements_(std::move(replacements)) {}
  NginxProxy(const NginxProxy&) = delete;
  NginxProxy& operator=(const NginxProxy&) = delete;
  ~NginxProxy() { Stop(); }

  int port() const { return port_; }
  std::string address() const { return absl::StrCat("127.0.0.1:", port_); }
  pid_t pid() const { return pid_; }

  // Renders the configuration and starts nginx; false (with `why`) if it does not answer an
  // HTTP/2 SETTINGS within 10 s.
  bool Start(std::string* why) {
    std::ifstream in(template_path_);
    std::stringstream text;
    text << in.rdbuf();
    if (text.str().empty()) return Fail(why, absl::StrCat("cannot read ", template_path_));
    std::vector<std::pair<std::string, std::string>> replacements = replacements_;
    replacements.emplace_back("@PREFIX@", dir_);
    replacements.emplace_back("@LISTEN@", address());
    const std::string conf = absl::StrReplaceAll(text.str(), replacements);
    std::ofstream(dir_ + "/nginx.conf") << conf;
    chmod(dir_.c_str(), 0755);  // the worker runs as nobody when the test runs as root
    std::vector<std::string> args = {kNginxPath, "-p", dir_, "-e", dir_ + "/error.log",
                                     "-c", dir_ + "/nginx.conf", "-g", "daemon off;"};
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    const pid_t pid = fork();
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      execv(argv[0], argv.data());
      _exit(127);
    }
    if (pid < 0) return Fail(why, "fork failed");
    pid_ = pid;
    const absl::Time deadline = absl::Now() + absl::Seconds(10);
    while (absl::Now() < deadline) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = 0;
        return Fail(why, absl::StrCat("nginx exited: ", ErrorLog()));
      }
      auto connection = testing::RawHttp2::Connect(port_);
      if (connection.ok()) {
        (*connection)->Pump(absl::Milliseconds(200));
        if (!(*connection)->peer_settings().empty()) return true;
      }
      absl::SleepFor(absl::Milliseconds(50));
    }
    return Fail(why, absl::StrCat("nginx did not answer: ", ErrorLog()));
  }

  void Stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = 0;
  }

  std::string ErrorLog() const {
    std::ifstream in(dir_ + "/error.log");
    std::stringstream out;
    out << in.rdbuf();
    return out.str();
  }

 private:
  static bool Fail(std::string* why, std::string text) {
    *why = std::move(text);
    return false;
  }

  const std::string dir_;
  const int port_;
  const std::string template_path_;
  const std::vector<std::pair<std::string, std::string>> replacements_;
  pid_t pid_ = 0;
};

}  // namespace outreach::e2e
