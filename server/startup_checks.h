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

// --db: creates the directory (and missing parents) with mode 0700 if it is missing, then
// checks that neither group nor others have any access to it: the database holds call notes and
// the access log. FAILED_PRECONDITION naming the path and its mode (and the remedy) when they
// do, unless `allow_shared` (--insecure-db-permissions); FAILED_PRECONDITION too when it cannot
// be created or is not a directory. Files inside are created 0600: outreachd runs with umask 077.
absl::Status PrepareDbDirectory(const std::string& path, bool allow_shared);

// --tls-cert / --tls-key: both parse as PEM, and the key is the certificate's.
// FAILED_PRECONDITION saying which does not hold.
absl::Status CheckKeyMatchesCertificate(absl::string_view cert_chain_pem,
                                        absl::string_view private_key_pem);

// --min-free-disk: "auto" (nullopt: the store's default, the smaller of 256 MiB and 5% of the
// file system), or a whole number of MiB ("512"; "0" = no reserve). INVALID_ARGUMENT otherwise.
absl::StatusOr<std::optional<uint64_t>> ParseMinFreeDisk(absl::string_view text);

}  // namespace outreach::server
