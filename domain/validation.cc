#include "domain/validation.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace outreach::domain {
namespace {

// google.protobuf.Timestamp's documented range: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z.
constexpr int64_t kMinTimestampSeconds = -62135596800;
constexpr int64_t kMaxTimestampSeconds = 253402300799;

bool IsIdChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' ||
         c == ':' || c == '-';
}

// Quotes user input for an error message, cut short so a huge value cannot flood a log.
std::string Quote(absl::string_view text) {
  constexpr std::size_t kMaxShown = 80;
  if (text.size() <= kMaxShown) return absl::StrCat("\"", absl::CHexEscape(text), "\"");
  return absl::StrCat("\"", absl::CHexEscape(text.substr(0, kMaxShown)), "...\"");
}

int DigitAt(absl::string_view s, std::size_t i) {
  return absl::ascii_isdigit(static_cast<unsigned char>(s[i])) ? s[i] - '0' : -1;
}

}  // namespace

bool IsValidId(absl::string_view id) {
  if (id.empty() || id.size() > kMaxIdLength) return false;
  for (char c : id) {
    if (!IsIdChar(c)) return false;
  }
  return true;
}

absl::Status ValidateId(absl::string_view field, absl::string_view id) {
  if (id.empty()) return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  if (id.size() > kMaxIdLength) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", id.size(),
                                                   " characters, at most ", kMaxIdLength));
  }
  if (!IsValidId(id)) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": ", Quote(id), " may contain only letters, digits and . _ : -"));
  }
  return absl::OkStatus();
}

absl::Status ValidateOptionalId(absl::string_view field, absl::string_view id) {
  if (id.empty()) return absl::OkStatus();
  return ValidateId(field, id);
}

absl::StatusOr<absl::CivilDay> ParseDate(absl::string_view field, absl::string_view text) {
  auto invalid = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", Quote(text), " ", why));
  };
  if (text.size() != 10 || text[4] != '-' || text[7] != '-') {
    return invalid("is not a date (want YYYY-MM-DD)");
  }
  int digits[8];
  const std::size_t kDigitAt[8] = {0, 1, 2, 3, 5, 6, 8, 9};
  for (int i = 0; i < 8; ++i) {
    digits[i] = DigitAt(text, kDigitAt[i]);
    if (digits[i] < 0) return invalid("is not a date (want YYYY-MM-DD)");
  }
  const int year = digits[0] * 1000 + digits[1] * 100 + digits[2] * 10 + digits[3];
  const int month = digits[4] * 10 + digits[5];
  const int day = digits[6] * 10 + digits[7];
  if (year < 1900) return invalid("is out of range (years 1900-9999)");
  const absl::CivilDay civil(year, month, day);
  // CivilDay normalizes (2025-02-30 becomes 2025-03-02); a changed field means no such day.
  if (civil.year() != year || civil.month() != month || civil.day() != day) {
    return invalid("is not a valid calendar date (want YYYY-MM-DD)");
  }
  return civil;
}

std::string FormatDate(absl::CivilDay day) {
  return absl::StrFormat("%04d-%02d-%02d", day.year(), day.month(), day.day());
}

absl::StatusOr<absl::Time> ParseTimestamp(absl::string_view field,
                                          const google::protobuf::Timestamp& ts) {
  if (ts.seconds() < kMinTimestampSeconds || ts.seconds() > kMaxTimestampSeconds) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": seconds ", ts.seconds(), " out of range (years 0001-9999)"));
  }
  if (ts.nanos() < 0 || ts.nanos() > 999999999) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": nanos ", ts.nanos(), " out of range (0-999999999)"));
  }
  return FromProto(ts);
}

google::protobuf::Timestamp ToProto(absl::Time t) {
  google::protobuf::Timestamp ts;
  const timespec spec = absl::ToTimespec(t);
  ts.set_seconds(spec.tv_sec);
  ts.set_nanos(static_cast<int32_t>(spec.tv_nsec));
  return ts;
}

absl::Time FromProto(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

absl::Status ValidateText(absl::string_view field, absl::string_view text, std::size_t max) {
  std::size_t code_points = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) != 0x80) ++code_points;
    // C1 controls U+0080..U+009F are encoded 0xC2 0x80..0x9F.
    const bool c1 = c == 0xC2 && i + 1 < text.size() &&
                    static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
                    static_cast<unsigned char>(text[i + 1]) <= 0x9F;
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7F || c1) {
      const unsigned value = c1 ? static_cast<unsigned char>(text[i + 1]) : c;
      return absl::InvalidArgumentError(absl::StrFormat(
          "%s: control character U+%04X at character %d (only newline and tab are allowed)",
          field, value, code_points));
    }
  }
  if (code_points > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", code_points, " characters, at most ", max));
  }
  return absl::OkStatus();
}

}  // namespace outreach::domain
