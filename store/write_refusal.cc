#include "store/write_refusal.h"


#include "absl/strings/cord.h"
#include "store/rocks.h"

namespace outreach::store {

absl::Status WritesRefusedAfter(Refuser who, const absl::Status& cause) {
  const bool no_space = IsNoSpace(cause);
  absl::string_view words;
  switch (who) {
    case Refuser::kStore:
      words = no_space ? "disk full: the store refuses writes until space is freed, then "
                         "resumes by itself"
                       : "the store refuses writes after a failed write or sync (the cause is in "
                         "the server's log); restart the server on a healthy disk";
      break;
    case Refuser::kAccessLog:
      words = no_space ? "disk full: reads cannot be recorded in the access log until space is "
                         "freed, then they resume by themselves"
                       : "reads cannot be recorded in the access log after a failed write (the "
                         "cause is in the server's log); restart the server on a healthy disk";
      break;
  }
  absl::Status refused = absl::UnavailableError(words);
  refused.SetPayload(kServerDetailPayload, absl::Cord(ServerDetail(cause)));
  if (no_space) refused.SetPayload(kNoSpacePayload, absl::Cord());
  return refused;
}

std::string ServerDetail(const absl::Status& status) {
  const auto detail = status.GetPayload(kServerDetailPayload);
  if (detail.has_value()) return std::string(*detail);
  return std::string(status.message());
}

}  // namespace outreach::store
