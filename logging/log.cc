#include "logging/log.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace outreach::logging {
namespace {

// Set once by Configure, before other threads run; read-only afterwards.
Options& Settings() {
  static Options* options = new Options();
  return *options;
}
std::atomic<int> g_level{static_cast<int>(Level::kInfo)};

// A text field value: bare when it is one plain word, quoted and escaped otherwise.
std::string TextValue(const Field::Value& value) {
  if (const auto* s = std::get_if<absl::string_view>(&value)) {
    const bool plain = !s->empty() && s->find_first_of(" \t\r\n\"=\\") == absl::string_view::npos &&
                       std::all_of(s->begin(), s->end(), [](unsigned char c) {
                         return c >= 0x20 && c < 0x7f;
                       });
    return plain ? std::string(*s) : absl::StrCat("\"", absl::CHexEscape(*s), "\"");
  }
  if (const auto* b = std::get_if<bool>(&value)) return *b ? "true" : "false";
  if (const auto* i = std::get_if<int64_t>(&value)) return absl::StrCat(*i);
  if (const auto* u = std::get_if<uint64_t>(&value)) return absl::StrCat(*u);
  return absl::StrCat(std::get<double>(value));
}

std::string TextRecord(absl::string_view program, absl::string_view msg,
                       std::initializer_list<Field> fields) {
  std::string line;
  bool first = true;
  for (absl::string_view part : absl::StrSplit(msg, '\n')) {
    if (!first) line.push_back('\n');
    absl::StrAppend(&line, program, ": ", part);
    first = false;
  }
  for (const Field& field : fields) {
    absl::StrAppend(&line, " ", field.key, "=", TextValue(field.value));
  }
  return line;
}

std::string JsonRecord(Level level, absl::string_view msg, std::initializer_list<Field> fields) {
  nlohmann::ordered_json record;
  record["ts"] = absl::FormatTime("%Y-%m-%dT%H:%M:%E6SZ", absl::Now(), absl::UTCTimeZone());
  record["level"] = std::string(LevelName(level));
  record["msg"] = std::string(msg);
  for (const Field& field : fields) {
    std::visit(
        [&](const auto& v) {
          if constexpr (std::is_same_v<std::decay_t<decltype(v)>, absl::string_view>) {
            record[std::string(field.key)] = std::string(v);
          } else {
            record[std::string(field.key)] = v;
          }
        },
        field.value);
  }
  return record.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

void WriteAll(int fd, const std::string& line) {
  std::size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = write(fd, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere left to say it
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace

void Configure(Options options) {
  g_level.store(static_cast<int>(options.level), std::memory_order_relaxed);
  Settings() = std::move(options);
}

absl::StatusOr<Format> ParseFormat(absl::string_view name, int fd) {
  if (name.empty()) return isatty(fd) == 1 ? Format::kText : Format::kJson;
  if (name == "text") return Format::kText;
  if (name == "json") return Format::kJson;
  return absl::InvalidArgumentError(
      absl::StrCat("--log-format: \"", name, "\" is not text or json"));
}

absl::StatusOr<Level> ParseLevel(absl::string_view name) {
  const std::string lower = absl::AsciiStrToLower(name);
  if (lower == "debug") return Level::kDebug;
  if (lower == "info") return Level::kInfo;
  if (lower == "warning" || lower == "warn") return Level::kWarning;
  if (lower == "error") return Level::kError;
  return absl::InvalidArgumentError(
      absl::StrCat("--log-level: \"", name, "\" is not debug, info, warning or error"));
}

absl::string_view LevelName(Level level) {
  switch (level) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarning:
      return "warning";
    case Level::kError:
      return "error";
  }
  return "info";
}

bool Enabled(Level level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}

std::string FormatRecord(Format format, absl::string_view program, Level level,
                         absl::string_view msg, std::initializer_list<Field> fields) {
  return format == Format::kJson ? JsonRecord(level, msg, fields)
                                 : TextRecord(program, msg, fields);
}

void Log(Level level, absl::string_view msg, std::initializer_list<Field> fields) {
  if (!Enabled(level)) return;
  const Options& options = Settings();
  std::string line = FormatRecord(options.format, options.program, level, msg, fields);
  line.push_back('\n');
  WriteAll(options.fd, line);
}

}  // namespace outreach::logging
