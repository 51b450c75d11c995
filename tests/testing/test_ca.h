// Certificates for TLS tests, made with OpenSSL's API at test time (nothing checked in, nothing
// downloaded): a CA, and server and client certificates it signs. Keys are ECDSA P-256,
// certificates SHA-256-signed, valid from an hour ago for a day. Thread-compatible.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace outreach::testing {

struct PemPair {
  std::string cert;  // PEM certificate
  std::string key;   // PEM private key (PKCS#8)
};

// A certificate authority that issues leaf certificates.
class TestCa {
 public:
  // A self-signed CA certificate whose subject CN is `name`.
  static absl::StatusOr<TestCa> Create(const std::string& name);

  const PemPair& root() const { return root_; }

  // A leaf certificate with subject CN `common_name` and the subjectAltNames `sans`, each
  // "DNS:name" or "IP:address" (a server for localhost wants {"DNS:localhost", "IP:127.0.0.1"}).
  // `server` sets extendedKeyUsage serverAuth, otherwise clientAuth.
  absl::StatusOr<PemPair> Issue(const std::string& common_name,
                                const std::vector<std::string>& sans, bool server) const;

 private:
  explicit TestCa(PemPair root) : root_(std::move(root)) {}
  PemPair root_;
};

}  // namespace outreach::testing
