// The load tool's pieces, and outreach-load itself for about a second per scenario against a
// real outreachd on a temporary database. Not a benchmark: it checks that every scenario runs,
// sends traffic and gets no errors, and that the JSON carries the fields make bench reads.
#include <stdio.h>
#include <sys/wait.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "tests/e2e/outreachd_process.h"
#include "tests/load/latency_histogram.h"

#ifndef OUTREACH_LOAD_PATH
#error "OUTREACH_LOAD_PATH must name the outreach-load binary"
#endif

namespace outreach::load {
namespace {

TEST(LatencyHistogramTest, BucketsAreContiguousAndIncreasing) {
  uint64_t previous_upper = 0;
  for (std::size_t bucket = 1; bucket < LatencyHistogram::kNumBuckets; ++bucket) {
    const uint64_t upper = LatencyHistogram::BucketUpperBound(bucket);
    ASSERT_GT(upper, previous_upper) << "bucket " << bucket;
    EXPECT_EQ(LatencyHistogram::BucketOf(previous_upper + 1), bucket);
    EXPECT_EQ(LatencyHistogram::BucketOf(upper), bucket);
    previous_upper = upper;
  }
  EXPECT_EQ(previous_upper, UINT64_MAX);
}

TEST(LatencyHistogramTest, PercentilesAreWithinOneSixtyFourthAbove) {
  LatencyHistogram histogram;
  for (uint64_t micros = 1; micros <= 10000; ++micros) histogram.Record(micros * 1000);
  EXPECT_EQ(histogram.Count(), 10000u);
  EXPECT_EQ(histogram.MaxNanos(), 10000u * 1000);
  for (const double q : {0.5, 0.9, 0.99, 0.999}) {
    const double exact = q * 10000 * 1000;
    const double reported = static_cast<double>(histogram.PercentileNanos(q));
    EXPECT_GE(reported, exact) << q;
    EXPECT_LE(reported, exact * (1 + 1.0 / 64)) << q;
  }
  EXPECT_EQ(histogram.PercentileNanos(1.0), 10000u * 1000);
  EXPECT_NEAR(histogram.MeanNanos(), 5000.5 * 1000, 1);
}

TEST(LatencyHistogramTest, EmptyHistogramReportsZero) {
  LatencyHistogram histogram;
  EXPECT_EQ(histogram.PercentileNanos(0.99), 0u);
  EXPECT_EQ(histogram.MeanNanos(), 0);
}

// Runs outreach-load with `args`; returns its stdout and sets *exit_code.
std::string RunLoad(const std::string& args, int* exit_code) {
  const std::string command = absl::StrCat(OUTREACH_LOAD_PATH, " ", args, " 2>/dev/null");
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    *exit_code = -1;
    return "";
  }
  std::string out;
  char buffer[4096];
  while (std::size_t n = fread(buffer, 1, sizeof(buffer), pipe)) out.append(buffer, n);
  const int status = pclose(pipe);
  *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

// The number after "key": in a flat JSON object; -1 when absent.
double JsonNumber(absl::string_view object, absl::string_view key) {
  const std::string needle = absl::StrCat("\"", key, "\":");
  const std::size_t at = object.find(needle);
  if (at == absl::string_view::npos) return -1;
  absl::string_view rest = object.substr(at + needle.size());
  rest = rest.substr(0, rest.find_first_of(",}"));
  double value = -1;
  return absl::SimpleAtod(rest, &value) ? value : -1;
}

class LoadSmokeTest : public testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = absl::StrCat(testing::TempDir(), "load_smoke_", getpid(), "_",
                                         testing::UnitTest::GetInstance()->random_seed());
    const int port = e2e::FreePort();
    ASSERT_GT(port, 0);
    daemon_ = std::make_unique<e2e::Daemon>(dir + "/db", port, dir + ".log");
    daemon_->Start();
    ASSERT_TRUE(daemon_->WaitServing()) << daemon_->Log();
  }

  std::unique_ptr<e2e::Daemon> daemon_;
};

TEST_F(LoadSmokeTest, EveryScenarioRunsWithoutErrors) {
  int exit_code = 0;
  const std::string out = RunLoad(
      absl::StrCat("--target=", daemon_->address(),
                   " --scenario=all --duration=1 --concurrency=4 --channels=2 --preload_tasks=40"
                   " --preload_close_tasks=20 --json --progress=false"),
      &exit_code);
  ASSERT_EQ(exit_code, 0) << out;
  const std::vector<std::string> lines = absl::StrSplit(out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 6u) << out;
  const char* kScenarios[] = {"baseline", "create", "log_contact", "log_and_close", "list",
                              "mixed"};
  for (std::size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE(lines[i]);
    EXPECT_NE(lines[i].find(absl::StrCat("\"scenario\":\"", kScenarios[i], "\"")),
              std::string::npos);
    EXPECT_EQ(JsonNumber(lines[i], "concurrency"), 4);
    EXPECT_EQ(JsonNumber(lines[i], "errors"), 0);
    EXPECT_GT(JsonNumber(lines[i], "rps"), 0);
    EXPECT_GT(JsonNumber(lines[i], "p50_ms"), 0);
    EXPECT_GE(JsonNumber(lines[i], "p99_ms"), JsonNumber(lines[i], "p50_ms"));
    EXPECT_GE(JsonNumber(lines[i], "p999_ms"), JsonNumber(lines[i], "p99_ms"));
  }
}

TEST_F(LoadSmokeTest, OpenLoopSendsAtTheRequestedRate) {
  int exit_code = 0;
  const std::string out = RunLoad(
      absl::StrCat("--target=", daemon_->address(),
                   " --scenario=baseline --rate=200 --duration=1 --json --progress=false"),
      &exit_code);
  ASSERT_EQ(exit_code, 0) << out;
  EXPECT_NE(out.find("\"mode\":\"open\""), std::string::npos) << out;
  EXPECT_EQ(JsonNumber(out, "errors"), 0) << out;
  // 200 intended sends in one second, give or take the last one.
  EXPECT_NEAR(JsonNumber(out, "requests"), 200, 2) << out;
}

TEST(LoadFlagsTest, TargetOffThisMachineIsRefused) {
  int exit_code = 0;
  RunLoad("--target=10.1.2.3:50051 --duration=1", &exit_code);
  EXPECT_EQ(exit_code, 2);
}

}  // namespace
}  // namespace outreach::load
