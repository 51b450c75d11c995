// DiskSpace: the free space of the file system that holds the database, and the reserve below
// which the store refuses new writes (outreachd --min-free-disk, README "Durability").
//
// Why a reserve: RocksDB needs room after the last acknowledged write — to flush memtables and
// compact, for the access log's records of reads, and for a clean shutdown. Refusing new events
// while some room is left keeps those working; a full disk is then the exception (another
// process filled it), not the way the service stops.
//
// CheckRoom() is on the writer's path: it re-reads statvfs(2) at most every `refresh` or after
// `refresh_bytes` written since the last read, whichever comes first, and otherwise answers from
// the cached figure. Free space is f_bavail (what an unprivileged writer may use). Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace outreach::store {

// The reserve when none is given: the smaller of 256 MiB and 5% of the file system, so that a
// small volume (a test's tmpfs, a 4 GiB container disk) is not refused from the start.
inline constexpr uint64_t kDefaultReserveCapBytes = uint64_t{256} << 20;
inline constexpr int kDefaultReservePercent = 5;

class DiskSpace {
 public:
  // `reserve_bytes`: nullopt = the default above (worked out from the file system at the first
  // read); 0 = no reserve (only a full disk stops writes).
  DiskSpace(std::string dir, std::optional<uint64_t> reserve_bytes,
            absl::Duration refresh = absl::Milliseconds(100),
            uint64_t refresh_bytes = uint64_t{1} << 20);

  // OK while free space is at or above the reserve, else UNAVAILABLE "disk almost full: N MiB
  // free, below the reserve of M MiB (--min-free-disk)". `written` is the number of bytes
  // written since the previous call (it may force a fresh read). A failing statvfs is OK: the
  // writes themselves will say what is wrong.
  absl::Status CheckRoom(uint64_t written = 0) ABSL_LOCKS_EXCLUDED(mu_);
  // A fresh reading: OK when free space is at or above the reserve and above zero.
  absl::Status CheckRoomNow() ABSL_LOCKS_EXCLUDED(mu_);

  // The reserve in bytes (the default is resolved at the first reading; 0 before it).
  uint64_t reserve_bytes() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Status Read() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Verdict() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string dir_;
  const absl::Duration refresh_;
  const uint64_t refresh_bytes_;

  mutable absl::Mutex mu_;
  std::optional<uint64_t> reserve_ ABSL_GUARDED_BY(mu_);
  bool known_ ABSL_GUARDED_BY(mu_) = false;  // free_ holds a reading
  uint64_t free_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time read_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  uint64_t written_since_read_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace outreach::store
