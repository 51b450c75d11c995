#include "store/erasure_list.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "domain/validation.h"

namespace outreach::store {
namespace {

constexpr char kTag[] = "erased";

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::UnavailableError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

}  // namespace

absl::Status AppendErasure(const std::string& path, const ErasureEntry& entry) {
  const std::string line =
      absl::StrCat(kTag, " ", entry.position, " ", entry.practice_id, " ", entry.pseudonym, "\n");
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return Errno("opening the erasure list", path);
  absl::Status status;
  if (::write(fd, line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
    status = Errno("appending to the erasure list", path);
  } else if (::fsync(fd) != 0) {
    status = Errno("syncing the erasure list", path);
  }
  ::close(fd);
  return status;
}

absl::StatusOr<std::vector<ErasureEntry>> ReadErasureList(const std::string& path) {
  std::vector<ErasureEntry> entries;
  std::ifstream in(path, std::ios::binary);
  if (!in.is_open()) {
    if (errno == ENOENT) return entries;
    return Errno("reading the erasure list", path);
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  const std::string text = buffer.str();
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n');
  // The piece after the last LF: empty, or a line cut by a crash mid-append.
  lines.pop_back();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    std::vector<absl::string_view> fields = absl::StrSplit(lines[i], ' ');
    ErasureEntry entry;
    if (fields.size() != 4 || fields[0] != kTag || !absl::SimpleAtoi(fields[1], &entry.position) ||
        !domain::IsValidId(fields[2]) || !domain::IsValidId(fields[3])) {
      return absl::InvalidArgumentError(
          absl::StrCat("erasure list ", path, " line ", i + 1, ": not \"", kTag,
                       " POSITION PRACTICE PSEUDONYM\""));
    }
    entry.practice_id = std::string(fields[2]);
    entry.pseudonym = std::string(fields[3]);
    entries.push_back(std::move(entry));
  }
  return entries;
}

}  // namespace outreach::store
