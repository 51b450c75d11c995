#include "store/group_commit.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"

namespace outreach::store {

absl::Status UnsharedCopy(const absl::Status& status) {
  if (status.ok()) return absl::OkStatus();
  absl::Status copy(status.code(), std::string(status.message()));
  status.ForEachPayload([&copy](absl::string_view type_url, const absl::Cord& payload) {
    copy.SetPayload(type_url, absl::Cord(std::string(payload)));
  });
  return copy;
}

}  // namespace outreach::store
