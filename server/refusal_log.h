// RefusalLog: every call refused by authentication or authorization, counted and logged.
//
// A refused call (UNAUTHENTICATED, PERMISSION_DENIED, or INVALID_ARGUMENT for malformed
// credentials metadata) is counted by code, always, and logged as one line:
//
//   outreachd: refused: code=UNAUTHENTICATED principal=unknown
//       method=/outreach.v1.TaskService/GetTask peer=ipv4:127.0.0.1:5555
//       reason="unknown bearer token"
//
// with the principal's id once its credentials named one ("unknown" otherwise). Never the token,
// nor any other credential: the reason is the server's own message, which names none. Lines are
// rate-limited (a burst of kBurst, then kPerSecond a second); a line after a quiet spell says how
// many were left out, so a flood of guesses cannot flood the log, and the counts stay exact.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace outreach::server {

class RefusalLog {
 public:
  static constexpr int kBurst = 20;
  static constexpr int kPerSecond = 5;

  // Where lines go (one call per line, without the newline) and what time it is; the defaults
  // are the process's log (logging/log.h: a warning "refused:" with code, principal, method,
  // peer, reason and not_logged_before fields) and absl::Now.
  using Sink = std::function<void(absl::string_view line)>;
  using Now = std::function<absl::Time()>;
  explicit RefusalLog(Sink sink = nullptr, Now now = nullptr);
  RefusalLog(const RefusalLog&) = delete;
  RefusalLog& operator=(const RefusalLog&) = delete;

  // Counts and (rate permitting) logs one refused call. `principal` empty = not authenticated.
  void Refused(const absl::Status& status, absl::string_view principal, absl::string_view method,
               absl::string_view peer);

  struct Counts {
    uint64_t unauthenticated = 0;
    uint64_t permission_denied = 0;
    uint64_t invalid_metadata = 0;  // malformed or repeated credentials metadata
    uint64_t lines_suppressed = 0;  // refusals counted but not logged (rate limit)
  };
  Counts counts() const;

 private:
  // The default sink's record.
  static void LogRefusal(const absl::Status& status, absl::string_view principal,
                         absl::string_view method, absl::string_view peer, uint64_t suppressed);
  // Whether a line may be written now; takes a token from the bucket.
  bool TakeToken(uint64_t* suppressed_before) ABSL_LOCKS_EXCLUDED(mu_);

  const Sink sink_;
  const Now now_;
  std::atomic<uint64_t> unauthenticated_{0};
  std::atomic<uint64_t> permission_denied_{0};
  std::atomic<uint64_t> invalid_metadata_{0};
  std::atomic<uint64_t> lines_suppressed_{0};

  mutable absl::Mutex mu_;
  double tokens_ ABSL_GUARDED_BY(mu_) = kBurst;
  absl::Time refilled_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  uint64_t suppressed_since_line_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace outreach::server
