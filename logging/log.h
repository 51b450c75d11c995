// The process's one log: outreachd's and outreachctl's lines on stderr, as text for a person at
// a terminal or as one JSON object a line for a log pipeline (README "Operations").
//
//   text:  outreachd: <msg>[ key=value ...]              (every line of a multi-line msg prefixed)
//   json:  {"ts":"2026-11-30T16:46:23.123456Z","level":"info","msg":"<msg>","key":value,...}
//
// `ts` is RFC 3339 in UTC with microseconds; `level` is debug, info, warning or error; the fields
// keep their order and type (strings, integers, doubles, booleans). JSON is built with
// nlohmann::json, which escapes every control character, so one record is always one line; a
// byte sequence that is not UTF-8 is replaced (U+FFFD), never dropped with the record.
//
// What must never be logged: notes, titles, patient ids, tokens (the request log, server/
// call_observer.h, names the fields it may log). Callers pass ids of tasks, principals and
// requests only.
//
// Configure once at start-up (before other threads log); Log is thread-safe afterwards: each
// record is one write(2) of a whole line.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <variant>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace outreach::logging {

enum class Level { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };
enum class Format { kText, kJson };

struct Options {
  std::string program = "outreachd";  // the text format's prefix
  Format format = Format::kText;
  Level level = Level::kInfo;  // records below it are dropped
  int fd = 2;                  // where lines go
};

// Sets the process's log. Not thread-safe: call before other threads log.
void Configure(Options options);

// "text" or "json"; "" = text when `fd` is a terminal, JSON otherwise.
absl::StatusOr<Format> ParseFormat(absl::string_view name, int fd = 2);
// "debug", "info", "warning" (or "warn"), "error".
absl::StatusOr<Level> ParseLevel(absl::string_view name);
absl::string_view LevelName(Level level);

// One field of a record. Strings are copied into the line, never kept.
struct Field {
  using Value = std::variant<absl::string_view, int64_t, uint64_t, double, bool>;
  Field(absl::string_view k, absl::string_view v) : key(k), value(v) {}
  Field(absl::string_view k, const std::string& v) : key(k), value(absl::string_view(v)) {}
  Field(absl::string_view k, const char* v) : key(k), value(absl::string_view(v)) {}
  Field(absl::string_view k, int v) : key(k), value(int64_t{v}) {}
  Field(absl::string_view k, long v) : key(k), value(int64_t{v}) {}
  Field(absl::string_view k, long long v) : key(k), value(int64_t{v}) {}
  Field(absl::string_view k, unsigned v) : key(k), value(uint64_t{v}) {}
  Field(absl::string_view k, unsigned long v) : key(k), value(uint64_t{v}) {}
  Field(absl::string_view k, unsigned long long v) : key(k), value(uint64_t{v}) {}
  Field(absl::string_view k, double v) : key(k), value(v) {}
  Field(absl::string_view k, bool v) : key(k), value(v) {}
  absl::string_view key;
  Value value;
};

// Whether a record at `level` would be written (skip building costly fields otherwise).
bool Enabled(Level level);

// Writes one record, if `level` is enabled.
void Log(Level level, absl::string_view msg, std::initializer_list<Field> fields = {});

inline void Debug(absl::string_view msg, std::initializer_list<Field> fields = {}) {
  Log(Level::kDebug, msg, fields);
}
inline void Info(absl::string_view msg, std::initializer_list<Field> fields = {}) {
  Log(Level::kInfo, msg, fields);
}
inline void Warning(absl::string_view msg, std::initializer_list<Field> fields = {}) {
  Log(Level::kWarning, msg, fields);
}
inline void Error(absl::string_view msg, std::initializer_list<Field> fields = {}) {
  Log(Level::kError, msg, fields);
}

// The record as it would be written (without the newline); for tests.
std::string FormatRecord(Format format, absl::string_view program, Level level,
                         absl::string_view msg, std::initializer_list<Field> fields);

}  // namespace outreach::logging
