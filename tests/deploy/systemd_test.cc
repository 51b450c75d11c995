// deploy/systemd/outreachd.service checked with systemd's own tools: `systemd-analyze verify`
// prints nothing, `systemd-analyze security --offline=yes` rates its exposure at most 2.0, and
// the unit boots under systemd (PID 1) in a podman container of a Debian root with systemd
// (OUTREACH_SYSTEMD_IMAGE, built by deploy/systemd/build-test-image.sh in `make test-deploy`):
// start, serving, reload (SIGHUP), stop with exit 0, its lines in the journal.
#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "tests/deploy/deploy_support.h"
#include "tests/e2e/outreachd_process.h"
#include "tests/testing/temp_dir.h"

namespace outreach::deploy {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kUnit[] = OUTREACH_SOURCE_DIR "/deploy/systemd/outreachd.service";
constexpr char kInstalledPath[] = "/usr/local/bin/outreachd";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

class SystemdUnitTest : public ::testing::Test {
 protected:
  // The unit as installed, except that ExecStart names the binary this build made: verify checks
  // that the command exists and is executable.
  std::string UnitWithThisBuildsBinary() {
    const std::string unit = ReadFile(kUnit);
    EXPECT_THAT(unit, HasSubstr(kInstalledPath));
    const std::string path = dir_ + "/outreachd.service";
    std::ofstream(path) << absl::StrReplaceAll(unit, {{kInstalledPath, OUTREACHD_PATH}});
    return path;
  }

  testing::TempDir temp_{"outreach_systemd_"};
  const std::string dir_ = temp_.path();
};

TEST_F(SystemdUnitTest, VerifyPrintsNothing) {
  const std::vector<std::string> args = {"systemd-analyze", "verify", UnitWithThisBuildsBinary()};
  const ToolRun run = RunTool(args, dir_);
  EXPECT_EQ(run.exit_code, 0) << run.Describe(args);
  EXPECT_EQ(run.output, "") << run.Describe(args);
}

TEST_F(SystemdUnitTest, OfflineSecurityExposureIsAtMostTwo) {
  const std::vector<std::string> args = {"systemd-analyze", "security", "--offline=yes",
                                         "--no-pager", UnitWithThisBuildsBinary()};
  const ToolRun run = RunTool(args, dir_);
  ASSERT_EQ(run.exit_code, 0) << run.Describe(args);
  const std::string kOverall = "Overall exposure level for outreachd.service: ";
  const std::size_t at = run.output.find(kOverall);
  ASSERT_NE(at, std::string::npos) << run.Describe(args);
  const std::string rest = run.output.substr(at + kOverall.size());
  double exposure = 99;
  ASSERT_TRUE(absl::SimpleAtod(rest.substr(0, rest.find(' ')), &exposure)) << rest;
  std::printf("systemd-analyze security --offline=yes: exposure %.1f\n", exposure);
  EXPECT_LE(exposure, 2.0) << run.output;
}

// ---- The unit booted under systemd in a container ---------------------------------------------

class SystemdBootTest : public SystemdUnitTest {
 protected:
  void SetUp() override {
    const char* image = getenv("OUTREACH_SYSTEMD_IMAGE");
    if (image == nullptr || *image == '\0') {
      GTEST_SKIP() << "OUTREACH_SYSTEMD_IMAGE is not set: `make test-deploy` builds it";
    }
    image_ = image;
    ConfigurePodman(dir_);
  }
  void TearDown() override {
    if (!image_.empty()) Podman({"rm", "-f", "-t", "0", name_});
  }
  ToolRun Podman(std::vector<std::string> args, absl::Duration timeout = absl::Seconds(60)) {
    args.insert(args.begin(), "podman");
    ToolRun run = RunTool(args, dir_, timeout);
    last_ = run.Describe(args);
    return run;
  }
  // systemctl or journalctl inside the container.
  ToolRun Exec(std::vector<std::string> args) {
    args.insert(args.begin(), {"exec", name_});
    return Podman(args);
  }
  // Polls `systemctl is-active outreachd` until it prints `state`.
  bool WaitActive(const std::string& state, absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      if (Trimmed(Exec({"systemctl", "is-active", "outreachd"}).output) == state) return true;
      absl::SleepFor(absl::Milliseconds(250));
    }
    return false;
  }

  std::string image_;
  const std::string name_ = absl::StrCat("outreach-systemd-test-", getpid());
  std::string last_;
};

TEST_F(SystemdBootTest, TheUnitStartsReloadsAndStopsCleanlyUnderSystemd) {
  ASSERT_EQ(Podman({"run", "-d", "--name", name_, "--systemd=always", image_}).exit_code, 0)
      << last_;
  // The image enables the unit: systemd starts it at boot.
  ASSERT_TRUE(WaitActive("active", absl::Seconds(60)))
      << last_ << Exec({"systemctl", "status", "outreachd", "--no-pager"}).output
      << Exec({"journalctl", "-b", "--no-pager", "-n", "80"}).output;
  ASSERT_TRUE(absl::StrContains(
      Exec({"journalctl", "-u", "outreachd", "--no-pager"}).output, "\"msg\":\"serving on"))
      << last_;
  // Sandboxed as the unit says: a dynamic (non-root) user, no capabilities, no new privileges.
  const std::string pid =
      Trimmed(Exec({"systemctl", "show", "-p", "MainPID", "--value", "outreachd"}).output);
  const std::string status = Exec({"cat", "/proc/" + pid + "/status"}).output;
  EXPECT_THAT(status, Not(HasSubstr("\nUid:\t0\t"))) << status;
  EXPECT_THAT(status, HasSubstr("\nCapEff:\t0000000000000000\n")) << status;
  EXPECT_THAT(status, HasSubstr("\nNoNewPrivs:\t1\n")) << status;
  ASSERT_EQ(Exec({"systemctl", "reload", "outreachd"}).exit_code, 0) << last_;
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  std::string journal;
  while (absl::Now() < deadline && !absl::StrContains(journal, "SIGHUP")) {
    journal = Exec({"journalctl", "-u", "outreachd", "--no-pager"}).output;
    absl::SleepFor(absl::Milliseconds(200));
  }
  EXPECT_THAT(journal, HasSubstr("\"msg\":\"SIGHUP"));
  ASSERT_EQ(Exec({"systemctl", "stop", "outreachd"}).exit_code, 0) << last_;
  EXPECT_TRUE(WaitActive("inactive", absl::Seconds(15))) << last_;
  // ExecMainStatus: the exit code of the stopped main process; Result: success, not "signal".
  EXPECT_EQ(Trimmed(Exec({"systemctl", "show", "-p", "ExecMainStatus", "--value", "outreachd"})
                        .output),
            "0");
  EXPECT_EQ(Trimmed(Exec({"systemctl", "show", "-p", "Result", "--value", "outreachd"}).output),
            "success");
  journal = Exec({"journalctl", "-u", "outreachd", "--no-pager"}).output;
  // The journal is not a terminal: outreachd logs JSON lines there (README "Logs").
  EXPECT_THAT(journal, HasSubstr("\"msg\":\"SIGTERM received, draining\""));
  EXPECT_THAT(journal, HasSubstr("\"msg\":\"stopped\""));
  std::printf("journal of outreachd.service:\n%s\n", journal.c_str());
}

}  // namespace
}  // namespace outreach::deploy
