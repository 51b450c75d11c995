// The process's log (logging/log.h): what a record looks like in each format, what is dropped,
// and that hostile text cannot break a record's one line.
#include "logging/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <regex>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace outreach::logging {
namespace {

using ::testing::HasSubstr;

// Configures the log to write into a pipe; Take() returns what was written since.
class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(pipe2(fds_, O_NONBLOCK), 0);
  }
  void TearDown() override {
    Configure(Options());  // back to stderr before the pipe closes
    close(fds_[0]);
    close(fds_[1]);
  }
  void Use(Format format, Level level = Level::kInfo) {
    Configure({.program = "outreachd", .format = format, .level = level, .fd = fds_[1]});
  }
  std::string Take() {
    std::string out;
    char buffer[4096];
    ssize_t n = 0;
    while ((n = read(fds_[0], buffer, sizeof(buffer))) > 0) out.append(buffer, n);
    return out;
  }

  int fds_[2] = {-1, -1};
};

TEST_F(LogTest, JsonRecordIsOneObjectWithTsLevelMsgFirstAndTypedFields) {
  Use(Format::kJson);
  Info("request", {{"method", "/outreach.v1.TaskService/GetTask"},
                   {"code", "OK"},
                   {"duration_ms", 1.5},
                   {"position", uint64_t{42}},
                   {"replayed", false}});
  const std::string out = Take();
  ASSERT_EQ(out.back(), '\n');
  ASSERT_EQ(out.find('\n'), out.size() - 1) << out;
  EXPECT_EQ(out.rfind("{\"ts\":\"", 0), 0u) << out;
  const nlohmann::ordered_json record = nlohmann::ordered_json::parse(out);
  EXPECT_TRUE(std::regex_match(record["ts"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)")))
      << record["ts"];
  EXPECT_EQ(record["level"], "info");
  EXPECT_EQ(record["msg"], "request");
  EXPECT_EQ(record["method"], "/outreach.v1.TaskService/GetTask");
  EXPECT_EQ(record["duration_ms"], 1.5);
  EXPECT_EQ(record["position"], 42);
  EXPECT_EQ(record["replayed"], false);
  auto key = record.begin();
  EXPECT_EQ((key++).key(), "ts");
  EXPECT_EQ((key++).key(), "level");
  EXPECT_EQ((key++).key(), "msg");
}

TEST_F(LogTest, JsonEscapesNewlinesAndControlsAndReplacesInvalidUtf8) {
  Use(Format::kJson);
  Warning("line one\nline two", {{"reason", std::string("a\r\x1b[31mred\x01 \xff\xfe end")}});
  const std::string out = Take();
  ASSERT_EQ(out.find('\n'), out.size() - 1) << out;
  const nlohmann::json record = nlohmann::json::parse(out);
  EXPECT_EQ(record["level"], "warning");
  EXPECT_EQ(record["msg"], "line one\nline two");
  EXPECT_THAT(record["reason"].get<std::string>(), HasSubstr("\xEF\xBF\xBD"));  // U+FFFD
  EXPECT_THAT(record["reason"].get<std::string>(), HasSubstr("end"));
}

TEST_F(LogTest, TextPrefixesEveryLineAndQuotesValuesThatAreNotOneWord) {
  Use(Format::kText);
  Info("serving on 127.0.0.1:5 (time zone UTC)",
       {{"address", "127.0.0.1:5"}, {"reason", "two words"}, {"empty", ""}, {"n", 3}});
  EXPECT_EQ(Take(),
            "outreachd: serving on 127.0.0.1:5 (time zone UTC) address=127.0.0.1:5 "
            "reason=\"two words\" empty=\"\" n=3\n");
  Error("first\nsecond");
  EXPECT_EQ(Take(), "outreachd: first\noutreachd: second\n");
  Info("refused:", {{"reason", "a \"quoted\"\nline"}});
  EXPECT_EQ(Take(), "outreachd: refused: reason=\"a \\\"quoted\\\"\\nline\"\n");
}

TEST_F(LogTest, RecordsBelowTheLevelAreDropped) {
  Use(Format::kJson, Level::kWarning);
  EXPECT_FALSE(Enabled(Level::kInfo));
  EXPECT_TRUE(Enabled(Level::kError));
  Debug("debug");
  Info("info");
  Error("error");
  const std::string out = Take();
  EXPECT_THAT(out, HasSubstr("\"msg\":\"error\""));
  EXPECT_EQ(out.find("\"msg\":\"info\""), std::string::npos) << out;
  EXPECT_EQ(out.find("\"msg\":\"debug\""), std::string::npos) << out;
}

TEST(LogFlagsTest, FormatAndLevelNames) {
  EXPECT_EQ(*ParseFormat("text"), Format::kText);
  EXPECT_EQ(*ParseFormat("json"), Format::kJson);
  const int file = open("/dev/null", O_WRONLY);
  ASSERT_GE(file, 0);
  EXPECT_EQ(*ParseFormat("", file), Format::kJson);  // not a terminal
  close(file);
  EXPECT_EQ(ParseFormat("xml").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(ParseFormat("xml").status().message()), HasSubstr("--log-format"));
  EXPECT_EQ(*ParseLevel("debug"), Level::kDebug);
  EXPECT_EQ(*ParseLevel("WARN"), Level::kWarning);
  EXPECT_EQ(*ParseLevel("error"), Level::kError);
  EXPECT_EQ(ParseLevel("loud").status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace outreach::logging
