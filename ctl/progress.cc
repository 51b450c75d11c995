#include "ctl/progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace outreach::ctl {
namespace {

double Rate(uint64_t done, absl::Duration elapsed) {
  const double seconds = absl::ToDoubleSeconds(elapsed);
  return seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
}

}  // namespace

Progress::Progress(std::string what, uint64_t total, int fd)
    : what_(std::move(what)),
      total_(total),
      fd_(fd),
      terminal_(isatty(fd) == 1),
      started_(absl::Now()) {}

std::string Progress::Line(uint64_t done, uint64_t total, absl::Duration elapsed) {
  const double rate = Rate(done, elapsed);
  if (total == 0) return absl::StrFormat("%d events, %.0f events/s", done, rate);
  const double percent = 100.0 * static_cast<double>(std::min(done, total)) /
                         static_cast<double>(total);
  std::string eta = "?";
  if (rate > 0) {
    const double left = static_cast<double>(total > done ? total - done : 0) / rate;
    const absl::Duration whole = absl::Seconds(std::ceil(left));
    eta = whole == absl::ZeroDuration() ? "0s" : absl::FormatDuration(whole);
  }
  return absl::StrFormat("%d/%d events (%.1f%%), %.0f events/s, ETA %s", done, total, percent,
                         rate, eta);
}

std::string Progress::Summary(uint64_t done, absl::Duration elapsed) {
  return absl::StrFormat("done: %d events in %s (%.0f events/s)", done,
                         absl::FormatDuration(absl::Trunc(elapsed, absl::Microseconds(1))),
                         Rate(done, elapsed));
}

void Progress::Update(uint64_t done) {
  if (!terminal_) return;
  const absl::Time now = absl::Now();
  if (now - drawn_ < kRedraw) return;
  drawn_ = now;
  Draw(absl::StrCat(what_, ": ", Line(done, total_, now - started_)), /*end=*/false);
}

void Progress::Finish(uint64_t done) {
  if (terminal_) {
    Draw(absl::StrCat(what_, ": ", Line(done, total_, absl::Now() - started_)), /*end=*/true);
  }
  const std::string line =
      absl::StrCat("outreachctl ", what_, ": ", Summary(done, absl::Now() - started_), "\n");
  if (write(fd_, line.data(), line.size()) < 0) return;
}

void Progress::Draw(const std::string& text, bool end) {
  // Back to the line's start, the text, then clear what a longer previous line left.
  const std::string line = absl::StrCat("\r", text, "\x1b[K", end ? "\n" : "");
  if (write(fd_, line.data(), line.size()) < 0) return;  // nowhere to draw: not worth failing
}

}  // namespace outreach::ctl
