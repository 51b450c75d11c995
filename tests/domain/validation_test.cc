// SPEC §5 field rules: ids, dates, timestamps, text lengths.
#include "domain/validation.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace outreach::domain {
namespace {

TEST(IdRuleTest, AcceptsOneToSixtyFourAllowedCharacters) {
  EXPECT_TRUE(IsValidId("a"));
  EXPECT_TRUE(IsValidId("Task-1.2_3:x"));
  EXPECT_TRUE(IsValidId(std::string(64, 'x')));
}

TEST(IdRuleTest, RefusesEmptyTooLongAndOtherCharacters) {
  EXPECT_FALSE(IsValidId(""));
  EXPECT_FALSE(IsValidId(std::string(65, 'x')));
  EXPECT_FALSE(IsValidId("has space"));
  EXPECT_FALSE(IsValidId("slash/"));
  EXPECT_FALSE(IsValidId(absl::string_view("nul\0x", 5)));
  EXPECT_FALSE(IsValidId("caf\xc3\xa9"));
}

TEST(IdRuleTest, ErrorNamesTheFieldAndSaysWhy) {
  absl::Status empty = ValidateId("patient_id", "");
  EXPECT_EQ(empty.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(empty.message(), "patient_id: required");

  absl::Status long_id = ValidateId("task_id", std::string(65, 'a'));
  EXPECT_EQ(long_id.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(long_id.message(), "task_id: 65 characters, at most 64");

  absl::Status chars = ValidateId("assignee", "a b");
  EXPECT_EQ(chars.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(chars.message(), "assignee: \"a b\" may contain only letters, digits and . _ : -");
}

TEST(IdRuleTest, OptionalIdMayBeEmptyButNotMalformed) {
  EXPECT_TRUE(ValidateOptionalId("assignee", "").ok());
  EXPECT_EQ(ValidateOptionalId("assignee", "a/b").code(), absl::StatusCode::kInvalidArgument);
}

TEST(DateRuleTest, ParsesStrictIsoCalendarDates) {
  absl::StatusOr<absl::CivilDay> day = ParseDate("follow_up_date", "2024-02-29");
  ASSERT_TRUE(day.ok()) << day.status();
  EXPECT_EQ(*day, absl::CivilDay(2024, 2, 29));
  EXPECT_EQ(FormatDate(*day), "2024-02-29");
}

TEST(DateRuleTest, RefusesDaysThatDoNotExist) {
  for (const char* text : {"2025-02-29", "2025-02-30", "2025-04-31", "2025-13-01", "2025-00-10",
                           "2025-01-00", "2025-01-32"}) {
    absl::StatusOr<absl::CivilDay> day = ParseDate("follow_up_date", text);
    EXPECT_EQ(day.status().code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_EQ(day.status().message().rfind("follow_up_date: ", 0), 0u) << day.status();
  }
}

TEST(DateRuleTest, RefusesOtherShapes) {
  for (const char* text : {"", "2025-1-01", "2025/01/01", "20250101", "tomorrow", "2025-01-01T00",
                           " 2025-01-01", "+025-01-01", "0999-01-01"}) {
    EXPECT_EQ(ParseDate("follow_up_date", text).status().code(),
              absl::StatusCode::kInvalidArgument)
        << text;
  }
}

TEST(TimestampRuleTest, RefusesSecondsAndNanosOutOfRange) {
  google::protobuf::Timestamp ts;
  ts.set_seconds(253402300800);  // 10000-01-01
  EXPECT_EQ(ParseTimestamp("expires_at", ts).status().code(), absl::StatusCode::kInvalidArgument);
  ts.set_seconds(0);
  ts.set_nanos(-1);
  EXPECT_EQ(ParseTimestamp("expires_at", ts).status().code(), absl::StatusCode::kInvalidArgument);
  ts.set_nanos(1000000000);
  absl::Status s = ParseTimestamp("contacted_at", ts).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message().rfind("contacted_at: ", 0), 0u) << s;
}

TEST(TimestampRuleTest, RoundTripsThroughProto) {
  const absl::Time t = absl::FromUnixMicros(1767225600123456);
  EXPECT_EQ(FromProto(ToProto(t)), t);
  const absl::Time before_epoch = absl::FromUnixMicros(-1500000);
  EXPECT_EQ(FromProto(ToProto(before_epoch)), before_epoch);
  absl::StatusOr<absl::Time> parsed = ParseTimestamp("at", ToProto(t));
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(*parsed, t);
}

TEST(TextRuleTest, CountsCharactersNotBytes) {
  std::string four_thousand_e_acute;
  for (int i = 0; i < 4000; ++i) four_thousand_e_acute += "\xc3\xa9";
  EXPECT_TRUE(ValidateText("notes", four_thousand_e_acute, kMaxNotesLength).ok());
  absl::Status s = ValidateText("notes", std::string(4001, 'n'), kMaxNotesLength);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "notes: 4001 characters, at most 4000");
}

TEST(TextRuleTest, RefusesControlCharactersButNewlineAndTab) {
  EXPECT_TRUE(ValidateText("notes", "line one\nline two\tcolumn", kMaxNotesLength).ok());
  EXPECT_TRUE(ValidateText("notes", "caf\xc3\xa9 \xe2\x80\x94 ok", kMaxNotesLength).ok());
  for (const std::string& bad :
       {std::string("a\rb"), std::string("\x1b[2J"), std::string("nul\0here", 8),
        std::string("del\x7f"), std::string("c1 \xc2\x85 next line")}) {
    absl::Status s = ValidateText("notes", bad, kMaxNotesLength);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << absl::CHexEscape(bad);
    EXPECT_THAT(std::string(s.message()), ::testing::StartsWith("notes: control character U+"))
        << absl::CHexEscape(bad);
  }
  EXPECT_EQ(ValidateText("notes", "ab\x07", kMaxNotesLength).message(),
            "notes: control character U+0007 at character 3 (only newline and tab are allowed)");
}

}  // namespace
}  // namespace outreach::domain
