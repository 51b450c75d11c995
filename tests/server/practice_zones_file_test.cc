// server/practice_zones_file.h: the --practice-time-zones file, every way it can be refused
// (naming FILE:LINE), comments and blank lines, and a file that cannot be read.
#include "server/practice_zones_file.h"

#include <string>
#include <utility>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace outreach::server {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(PracticeZonesFileTest, ParsesPracticesZonesCommentsAndBlankLines) {
  absl::StatusOr<domain::PracticeZones> zones = ParsePracticeZones(
      "# practice   zone\n"
      "north\tAmerica/Chicago\n"
      "\n"
      "   south   America/Los_Angeles   # the coast office\n"
      "default UTC\n",
      "zones.txt");
  ASSERT_TRUE(zones.ok()) << zones.status();
  ASSERT_EQ(zones->size(), 3u);
  EXPECT_EQ(zones->at("north").name(), "America/Chicago");
  EXPECT_EQ(zones->at("south").name(), "America/Los_Angeles");
  EXPECT_EQ(zones->at("default").name(), "UTC");
}

TEST(PracticeZonesFileTest, AnEmptyFileListsNoPractice) {
  absl::StatusOr<domain::PracticeZones> zones = ParsePracticeZones("# none yet\n\n", "zones.txt");
  ASSERT_TRUE(zones.ok()) << zones.status();
  EXPECT_TRUE(zones->empty());
}

TEST(PracticeZonesFileTest, RefusesABadLineNamingTheFileAndLine) {
  const std::string good = "north America/Chicago\n";
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"north\n", "want: practice_id IANA-zone (got 1 fields)"},
      {"north America/Chicago extra\n", "want: practice_id IANA-zone (got 3 fields)"},
      {"no/rth UTC\n", "practice id \"no/rth\" must be 1-64 characters"},
      {std::string(65, 'p') + " UTC\n", "must be 1-64 characters"},
      {"south America/Atlantis\n",
       "unknown IANA time zone \"America/Atlantis\" for practice south"},
      {"south america/chicago\n", "unknown IANA time zone"},
      {"north UTC\n", "practice north is already listed on line 1"},
  };
  for (const auto& [line, why] : bad) {
    absl::StatusOr<domain::PracticeZones> zones = ParsePracticeZones(good + line, "z.txt");
    ASSERT_FALSE(zones.ok()) << line;
    EXPECT_EQ(zones.status().code(), absl::StatusCode::kInvalidArgument) << line;
    EXPECT_THAT(std::string(zones.status().message()), StartsWith("z.txt:2: ")) << line;
    EXPECT_THAT(std::string(zones.status().message()), HasSubstr(why)) << line;
  }
}

TEST(PracticeZonesFileTest, AFileThatCannotBeReadIsNotFound) {
  absl::StatusOr<domain::PracticeZones> zones =
      LoadPracticeZones("/nonexistent/outreach/zones.txt");
  EXPECT_EQ(zones.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(zones.status().message()),
              HasSubstr("/nonexistent/outreach/zones.txt"));
  // A directory is no file, not an empty one.
  EXPECT_EQ(LoadPracticeZones("/tmp").status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace outreach::server
