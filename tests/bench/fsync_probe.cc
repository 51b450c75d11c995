// outreach-fsync-probe: the disk's own durable-write latency, the floor under every synced
// command (issue 18, targets 3 and 5), measured on the directory the bench's databases use.
//
//   outreach-fsync-probe --dir=DIR [--seconds=5] [--max_samples=100000]
//
// In a scratch file in --dir it appends 4 KiB (pwrite at the end of the file) and fdatasync()s,
// one after the other, for --seconds, timing each write + fdatasync together: what a WAL append
// with sync costs (the file grows, so each fdatasync also persists the new size, as RocksDB's
// WAL appends do). Every 16 MiB the file is truncated to empty again (untimed). Prints one JSON
// object on stdout:
//   {"fsync_samples":N,"fsync_p50_ms":..,"fsync_p99_ms":..,"fsync_max_ms":..,"fsync_mean_ms":..}
// The scratch file is removed at the end.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "tests/load/latency_histogram.h"

ABSL_FLAG(std::string, dir, "", "the directory to probe (on the disk under test; required)");
ABSL_FLAG(double, seconds, 5, "how long to probe");
ABSL_FLAG(uint64_t, max_samples, 100000, "stop after this many writes even if time is left");

namespace outreach::bench {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kWriteBytes = 4096;
constexpr off_t kWrapBytes = off_t{16} << 20;

double Millis(uint64_t nanos) { return static_cast<double>(nanos) / 1e6; }

int Main(int argc, char** argv) {
  absl::SetProgramUsageMessage("outreach-fsync-probe --dir=DIR: 4 KiB write + fdatasync latency");
  absl::ParseCommandLine(argc, argv);
  const std::string dir = absl::GetFlag(FLAGS_dir);
  if (dir.empty() || !(absl::GetFlag(FLAGS_seconds) > 0)) {
    absl::FPrintF(stderr, "outreach-fsync-probe: want --dir and --seconds > 0\n");
    return 2;
  }
  const std::string path = absl::StrCat(dir, "/fsync-probe-", getpid());
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    absl::FPrintF(stderr, "outreach-fsync-probe: cannot create %s\n", path);
    return 1;
  }
  // The file's name is made durable once, as a new WAL's is.
  fdatasync(fd);
  std::vector<char> block(kWriteBytes, 'x');
  load::LatencyHistogram histogram;
  off_t offset = 0;
  const Clock::time_point end =
      Clock::now() + std::chrono::duration_cast<Clock::duration>(
                         std::chrono::duration<double>(absl::GetFlag(FLAGS_seconds)));
  bool failed = false;
  while (Clock::now() < end && histogram.Count() < absl::GetFlag(FLAGS_max_samples)) {
    if (offset >= kWrapBytes) {
      if (ftruncate(fd, 0) != 0 || fdatasync(fd) != 0) failed = true;
      offset = 0;
    }
    const Clock::time_point start = Clock::now();
    const ssize_t written = pwrite(fd, block.data(), block.size(), offset);
    const int synced = fdatasync(fd);
    const auto nanos =
        std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
    if (written != static_cast<ssize_t>(block.size()) || synced != 0 || failed) {
      failed = true;
      break;
    }
    offset += static_cast<off_t>(block.size());
    histogram.Record(static_cast<uint64_t>(nanos));
  }
  close(fd);
  unlink(path.c_str());
  if (failed || histogram.Count() == 0) {
    absl::FPrintF(stderr, "outreach-fsync-probe: a write or fdatasync in %s failed\n", dir);
    return 1;
  }
  absl::PrintF(
      "{\"fsync_samples\":%d,\"fsync_p50_ms\":%.4f,\"fsync_p99_ms\":%.4f,\"fsync_max_ms\":%.4f,"
      "\"fsync_mean_ms\":%.4f}\n",
      histogram.Count(), Millis(histogram.PercentileNanos(0.5)),
      Millis(histogram.PercentileNanos(0.99)), Millis(histogram.MaxNanos()),
      histogram.MeanNanos() / 1e6);
  return 0;
}

}  // namespace
}  // namespace outreach::bench

int main(int argc, char** argv) { return outreach::bench::Main(argc, argv); }
