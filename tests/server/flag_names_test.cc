// NormalizeFlagNames (server/flag_names.h): the documented --dashed-names of outreachd and
// outreach-load become the underscored names absl flags are declared with; values, the program
// name and everything after "--" reach absl::ParseCommandLine as given.
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "server/flag_names.h"

namespace outreach::server {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

// Calls NormalizeFlagNames the way main() does, with a mutable argv.
std::vector<std::string> Normalize(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  return NormalizeFlagNames(static_cast<int>(argv.size()), argv.data());
}

TEST(NormalizeFlagNamesTest, DashesInAFlagNameBecomeUnderscores) {
  EXPECT_THAT(Normalize({"outreachd", "--read-only-investigation", "--insecure-db-permissions"}),
              ElementsAre("outreachd", "--read_only_investigation", "--insecure_db_permissions"));
}

TEST(NormalizeFlagNamesTest, AValueAfterEqualsKeepsItsDashes) {
  EXPECT_THAT(Normalize({"outreachd", "--time-zone=America/Port-au-Prince",
                         "--tls-cert=/etc/out-reach/server-cert.pem", "--min-free-disk=a-b=c-d"}),
              ElementsAre("outreachd", "--time_zone=America/Port-au-Prince",
                          "--tls_cert=/etc/out-reach/server-cert.pem", "--min_free_disk=a-b=c-d"));
}

TEST(NormalizeFlagNamesTest, AValueInTheNextArgumentKeepsItsDashes) {
  EXPECT_THAT(
      Normalize({"outreachd", "--time-zone", "America/Port-au-Prince", "--db", "./my-data"}),
      ElementsAre("outreachd", "--time_zone", "America/Port-au-Prince", "--db", "./my-data"));
}

TEST(NormalizeFlagNamesTest, ASingleDashFlagIsNormalizedToo) {
  EXPECT_THAT(Normalize({"outreach-load", "-preload-tasks=100"}),
              ElementsAre("outreach-load", "-preload_tasks=100"));
}

TEST(NormalizeFlagNamesTest, NamesWithoutDashesAreUnchanged) {
  EXPECT_THAT(Normalize({"outreachd", "--listen=127.0.0.1:50051", "--time_zone=UTC", "--db=x"}),
              ElementsAre("outreachd", "--listen=127.0.0.1:50051", "--time_zone=UTC", "--db=x"));
}

TEST(NormalizeFlagNamesTest, EverythingAfterDoubleDashIsLeftAlone) {
  EXPECT_THAT(Normalize({"outreachd", "--time-zone=UTC", "--", "--not-a-flag", "-x-y"}),
              ElementsAre("outreachd", "--time_zone=UTC", "--", "--not-a-flag", "-x-y"));
}

TEST(NormalizeFlagNamesTest, TheProgramNameAndShortArgumentsAreLeftAlone) {
  EXPECT_THAT(Normalize({"/usr/bin/outreach-load", "-", "-h", "--", "--x"}),
              ElementsAre("/usr/bin/outreach-load", "-", "-h", "--", "--x"));
  EXPECT_THAT(Normalize({"outreach-load", "-a", "--"}), ElementsAre("outreach-load", "-a", "--"));
}

TEST(NormalizeFlagNamesTest, NoArgumentsGiveNoArguments) {
  EXPECT_THAT(Normalize({}), IsEmpty());
  EXPECT_THAT(Normalize({"outreachd"}), ElementsAre("outreachd"));
}

}  // namespace
}  // namespace outreach::server
