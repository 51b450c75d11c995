// TempDir: a fresh directory under the system's temporary directory, removed with everything in
// it when the TempDir goes. Every test that touches the disk works in one, so that tests never
// see each other's files. Movable, not copyable; thread-compatible.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace outreach::testing {

class TempDir {
 public:
  // Makes "<temp>/<prefix>XXXXXX" (mkdtemp); fails the running test if it cannot.
  explicit TempDir(absl::string_view prefix = "outreach_test_");
  TempDir(TempDir&& other) noexcept;
  TempDir& operator=(TempDir&& other) noexcept;
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();

  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string Join(absl::string_view name) const;

 private:
  void Remove();

  std::string path_;  // empty once moved from
};

}  // namespace outreach::testing
