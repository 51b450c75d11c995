// Progress of a long outreachctl command (verify, export, rebuild) on stderr.
//
// On a terminal: one line, rewritten in place at most every kRedraw, "rebuild: 40000/120000
// events (33.3%), 81200 events/s, ETA 1s" (without a known total: the count and the rate only);
// Finish() draws the final state and ends that line. Otherwise (a file, a pipe): nothing while
// it runs. Either way Finish() then writes one summary line: "outreachctl rebuild: done: 120000 events in 1.48s (81200 events/s)".
// (outreachctl's log, logging/log.h, takes warnings and errors only, so that the store's own
// info records, a rebuild's start and end, do not add lines to that one.)
//
// Not thread-safe: the command's own thread updates it.
#pragma once

#include <cstdint>
#include <string>

#include "absl/time/time.h"

namespace outreach::ctl {

class Progress {
 public:
  static constexpr absl::Duration kRedraw = absl::Milliseconds(200);

  // `what` names the command ("rebuild"); `total` 0 = unknown. Draws when `fd` is a terminal.
  Progress(std::string what, uint64_t total, int fd = 2);

  void Update(uint64_t done);
  // Ends the progress line (on a terminal) and writes the summary line.
  void Finish(uint64_t done);

  // The progress text after `elapsed`: done/total, percent, events/s, ETA (pure; for tests).
  static std::string Line(uint64_t done, uint64_t total, absl::Duration elapsed);
  // The summary: "done: N events in D (R events/s)".
  static std::string Summary(uint64_t done, absl::Duration elapsed);

 private:
  void Draw(const std::string& text, bool end);

  const std::string what_;
  const uint64_t total_;
  const int fd_;
  const bool terminal_;
  const absl::Time started_;
  absl::Time drawn_ = absl::InfinitePast();
};

}  // namespace outreach::ctl
