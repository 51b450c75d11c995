// The start-up rules of outreachd's security and disk flags, as pure functions so that tests can check
// them without starting a process (README "Security"). Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace outreach::server {

// What the security flags say about how the server listens.
struct ListenSecurity {
  std::string listen_address;
  bool tls = false;              // --tls-cert and --tls-key given
  bool insecure_listen = false;  // --insecure-listen
  bool principals = false;       // --principals given
};

// OK when outreachd may start so; FAILED_PRECONDITION saying why not:
//  - a non-loopback address without TLS and without --insecure-listen;
//  - a non-loopback address without --principals (local-development mode is loopback only,
//    with or without TLS and --insecure-listen).
absl::Status CheckListenSecurity(const ListenSecurity& listen);

// True when the start must log the --insecure-listen warning: plaintext on a non-loopback
// address.
bool InsecureListenWarning(const ListenSecurity& listen);

// --access-log-retention: a whole number and a unit, "6y" (365-day years), "30d", "12h",
// "90m", "45s", or "0" (keep every record). INVALID_ARGUMENT otherwise.
absl::StatusOr<absl::Duration> ParseRetention(absl::string_view text);

// --min-free-disk: "auto" (nullopt: the store's default, the smaller of 256 MiB and 5% of the
// file system), or a whole number of MiB ("512"; "0" = no reserve). INVALID_ARGUMENT otherwise.
absl::StatusOr<std::optional<uint64_t>> ParseMinFreeDisk(absl::string_view text);

}  // namespace outreach::server
