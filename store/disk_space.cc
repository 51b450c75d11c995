#include "store/disk_space.h"

#include <sys/statvfs.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace outreach::store {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;

}  // namespace

DiskSpace::DiskSpace(std::string dir, std::optional<uint64_t> reserve_bytes,
                     absl::Duration refresh, uint64_t refresh_bytes)
    : dir_(std::move(dir)),
      refresh_(refresh),
      refresh_bytes_(refresh_bytes),
      reserve_(reserve_bytes) {}

absl::Status DiskSpace::CheckRoom(uint64_t written) {
  absl::MutexLock lock(&mu_);
  written_since_read_ += written;
  const bool stale = !known_ || written_since_read_ >= refresh_bytes_ ||
                     absl::Now() - read_at_ >= refresh_;
  if (stale) Read().IgnoreError();  // a failing statvfs leaves the verdict to the writes
  return Verdict();
}

absl::Status DiskSpace::CheckRoomNow() {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = Read(); !s.ok()) return s;
  if (free_ == 0) return absl::UnavailableError("disk full: no space left");
  return Verdict();
}

uint64_t DiskSpace::reserve_bytes() const {
  absl::MutexLock lock(&mu_);
  return reserve_.value_or(0);
}

absl::Status DiskSpace::Read() {
  struct statvfs fs {};
  if (statvfs(dir_.c_str(), &fs) != 0) {
    return absl::UnavailableError("cannot read the free space of the database's file system");
  }
  const uint64_t block = fs.f_frsize != 0 ? fs.f_frsize : fs.f_bsize;
  free_ = static_cast<uint64_t>(fs.f_bavail) * block;
  if (!reserve_.has_value()) {
    const uint64_t size = static_cast<uint64_t>(fs.f_blocks) * block;
    reserve_ = std::min(kDefaultReserveCapBytes, size / 100 * kDefaultReservePercent);
  }
  known_ = true;
  read_at_ = absl::Now();
  written_since_read_ = 0;
  return absl::OkStatus();
}

absl::Status DiskSpace::Verdict() const {
  if (!known_ || !reserve_.has_value() || free_ >= *reserve_) return absl::OkStatus();
  return absl::UnavailableError(absl::StrFormat(
      "disk almost full: %d MiB free, below the reserve of %d MiB (--min-free-disk): new writes "
      "are refused until space is freed; reads go on",
      free_ / kMiB, (*reserve_ + kMiB - 1) / kMiB));
}

}  // namespace outreach::store
