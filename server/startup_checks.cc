#include "server/startup_checks.h"

#include <cstdint>

#include "absl/algorithm/container.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "server/auth.h"

namespace outreach::server {

absl::Status CheckListenSecurity(const ListenSecurity& listen) {
  if (IsLoopbackAddress(listen.listen_address)) return absl::OkStatus();
  if (!listen.principals) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--listen=", listen.listen_address,
        " is not a loopback address, and without --principals the server runs in local "
        "development mode, which listens on loopback only: give --principals (and TLS)"));
  }
  if (!listen.tls && !listen.insecure_listen) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--listen=", listen.listen_address,
        " is not a loopback address: serve TLS (--tls-cert, --tls-key), or give "
        "--insecure-listen to accept plaintext off loopback explicitly"));
  }
  return absl::OkStatus();
}

bool InsecureListenWarning(const ListenSecurity& listen) {
  return !listen.tls && !IsLoopbackAddress(listen.listen_address);
}

absl::StatusOr<absl::Duration> ParseRetention(absl::string_view text) {
  auto bad = [text]() {
    return absl::InvalidArgumentError(absl::StrCat(
        "--access-log-retention: \"", text,
        "\" is not a duration (want a whole number and a unit: 6y, 30d, 12h, 90m, 45s; or 0)"));
  };
  if (text == "0") return absl::ZeroDuration();
  if (text.size() < 2) return bad();
  const absl::string_view number = text.substr(0, text.size() - 1);
  for (char c : number) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return bad();
  }
  int64_t n = 0;
  if (!absl::SimpleAtoi(number, &n) || n <= 0) return bad();
  // No more than 1000 years: far beyond any retention rule, and no overflow below.
  constexpr int64_t kMaxDays = 1000 * 365;
  absl::Duration unit;
  switch (text.back()) {
    case 'y':
      unit = absl::Hours(24 * 365);
      break;
    case 'd':
      unit = absl::Hours(24);
      break;
    case 'h':
      unit = absl::Hours(1);
      break;
    case 'm':
      unit = absl::Minutes(1);
      break;
    case 's':
      unit = absl::Seconds(1);
      break;
    default:
      return bad();
  }
  if (n > kMaxDays * 24 * 3600) return bad();
  const absl::Duration retention = unit * n;
  if (retention > absl::Hours(24) * kMaxDays) return bad();
  return retention;
}

absl::StatusOr<std::optional<uint64_t>> ParseMinFreeDisk(absl::string_view text) {
  if (text == "auto") return std::optional<uint64_t>();
  uint64_t mib = 0;
  // Up to 1 PiB: no overflow below.
  if (text.empty() || !absl::c_all_of(text, [](char c) { return absl::ascii_isdigit(c); }) ||
      !absl::SimpleAtoi(text, &mib) || mib > (uint64_t{1} << 30)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--min-free-disk: \"", text, "\" is not a size (want MiB as a whole number, e.g. 512, "
        "0 for no reserve, or auto)"));
  }
  return std::optional<uint64_t>(mib << 20);
}

}  // namespace outreach::server
