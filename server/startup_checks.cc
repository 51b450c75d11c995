#include "server/startup_checks.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <memory>
#include <system_error>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "absl/strings/str_format.h"

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

absl::Status PrepareDbDirectory(const std::string& path, bool allow_shared) {
  // RocksDB creates only the last directory of the path; --db=/srv/outreach/data should just
  // work. Under outreachd's umask 077 every directory created here is 0700.
  std::error_code error;
  if (!std::filesystem::exists(path, error)) {
    std::filesystem::create_directories(path, error);
    if (error) {
      return absl::FailedPreconditionError(
          absl::StrFormat("--db: cannot create \"%s\": %s", path, error.message()));
    }
    if (chmod(path.c_str(), 0700) != 0) {
      return absl::FailedPreconditionError(absl::StrFormat(
          "--db: cannot make \"%s\" private (chmod 700): %s", path, std::strerror(errno)));
    }
  }
  struct stat info {};
  if (stat(path.c_str(), &info) != 0) {
    return absl::FailedPreconditionError(
        absl::StrFormat("--db: cannot read \"%s\": %s", path, std::strerror(errno)));
  }
  if (!S_ISDIR(info.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrFormat("--db: \"%s\" is not a directory", path));
  }
  const unsigned mode = info.st_mode & 07777;
  if ((mode & 077) != 0 && !allow_shared) {
    return absl::FailedPreconditionError(absl::StrFormat(
        "--db: \"%s\" is open to group or others (mode %04o): any local user could read call "
        "notes and the access log. Run `chmod 700 %s`, or pass --insecure-db-permissions",
        path, mode, path));
  }
  return absl::OkStatus();
}

absl::Status CheckKeyMatchesCertificate(absl::string_view cert_chain_pem,
                                        absl::string_view private_key_pem) {
  auto bio_of = [](absl::string_view pem) {
    return std::unique_ptr<BIO, decltype(&BIO_free)>(
        BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  };
  auto cert_bio = bio_of(cert_chain_pem);
  std::unique_ptr<X509, decltype(&X509_free)> cert(
      PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr), &X509_free);
  if (cert == nullptr) {
    return absl::FailedPreconditionError("--tls-cert: holds no PEM certificate");
  }
  auto key_bio = bio_of(private_key_pem);
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  if (key == nullptr) {
    return absl::FailedPreconditionError(
        "--tls-key: holds no PEM private key (or it is encrypted)");
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return absl::FailedPreconditionError(
        "--tls-key: is not the private key of the first certificate in --tls-cert");
  }
  return absl::OkStatus();
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
