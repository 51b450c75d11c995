#include "server/practice_zones_file.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "domain/validation.h"

namespace outreach::server {
namespace {

// One line's practice and zone, or why not.
absl::Status ParseLine(absl::string_view line, std::string* practice, absl::TimeZone* zone) {
  std::vector<absl::string_view> fields =
      absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (fields.size() != 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("want: practice_id IANA-zone (got ", fields.size(), " fields)"));
  }
  if (!domain::IsValidId(fields[0])) {
    return absl::InvalidArgumentError(absl::StrCat(
        "practice id \"", fields[0], "\" must be 1-64 characters of [A-Za-z0-9._:-]"));
  }
  if (!absl::LoadTimeZone(fields[1], zone)) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown IANA time zone \"", fields[1], "\" for practice ", fields[0]));
  }
  *practice = std::string(fields[0]);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<domain::PracticeZones> ParsePracticeZones(absl::string_view text,
                                                         absl::string_view file_name) {
  domain::PracticeZones zones;
  absl::flat_hash_map<std::string, int> line_of;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    if (const std::size_t hash = line.find('#'); hash != absl::string_view::npos) {
      line = line.substr(0, hash);
    }
    line = absl::StripAsciiWhitespace(line);
    if (line.empty()) continue;
    auto at_line = [&](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat(file_name, ":", line_number, ": ", why));
    };
    std::string practice;
    absl::TimeZone zone;
    if (absl::Status s = ParseLine(line, &practice, &zone); !s.ok()) return at_line(s.message());
    if (auto [it, added] = line_of.try_emplace(practice, line_number); !added) {
      return at_line(absl::StrCat("practice ", practice, " is already listed on line ",
                                  it->second));
    }
    zones.emplace(std::move(practice), zone);
  }
  return zones;
}

absl::StatusOr<domain::PracticeZones> LoadPracticeZones(const std::string& path) {
  // (A directory opens as a stream that reads nothing: it would pass for an empty file.)
  std::error_code error;
  if (!std::filesystem::is_regular_file(path, error)) {
    return absl::NotFoundError(
        absl::StrCat("cannot read practice time zones file ", path, " (not a regular file)"));
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (in) text << in.rdbuf();
  if (!in || in.bad()) {
    return absl::NotFoundError(absl::StrCat("cannot read practice time zones file ", path));
  }
  return ParsePracticeZones(text.str(), path);
}

}  // namespace outreach::server
