#include "store/info_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace outreach::store {
namespace {

class DroppingFileLogger final : public rocksdb::Logger {
 public:
  explicit DroppingFileLogger(int fd) : rocksdb::Logger(rocksdb::InfoLogLevel::INFO_LEVEL), fd_(fd) {}
  ~DroppingFileLogger() override { close(fd_); }

  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    char line[4096];
    const std::string stamp =
        absl::FormatTime("%Y/%m/%d-%H:%M:%E6S ", absl::Now(), absl::UTCTimeZone());
    int n = snprintf(line, sizeof(line), "%s", stamp.c_str());
    va_list copy;
    va_copy(copy, ap);
    const int body = vsnprintf(line + n, sizeof(line) - n - 1, format, copy);
    va_end(copy);
    if (body < 0) return;
    n = std::min<int>(n + body, sizeof(line) - 2);
    if (line[n - 1] != '\n') line[n++] = '\n';
    if (written_.fetch_add(n) + n > kInfoLogMaxBytes) return;
    // A failed or short write (a full disk) drops the line; nothing else depends on it.
    if (write(fd_, line, n) < 0) return;
  }

 private:
  const int fd_;
  std::atomic<uint64_t> written_{0};
};

}  // namespace

absl::StatusOr<std::shared_ptr<rocksdb::Logger>> OpenInfoLog(const std::string& dir) {
  std::error_code error;
  std::filesystem::create_directories(dir, error);
  const std::string path = absl::StrCat(dir, "/LOG");
  std::filesystem::rename(path, absl::StrCat(path, ".old"), error);  // none yet is fine
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("cannot open RocksDB's info log ", path));
  }
  return std::shared_ptr<rocksdb::Logger>(std::make_shared<DroppingFileLogger>(fd));
}

}  // namespace outreach::store
