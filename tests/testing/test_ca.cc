#include "tests/testing/test_ca.h"

#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "openssl/bio.h"
#include "openssl/bn.h"
#include "openssl/err.h"
#include "openssl/evp.h"
#include "openssl/pem.h"
#include "openssl/rand.h"
#include "openssl/x509.h"
#include "openssl/x509v3.h"

namespace outreach::testing {
namespace {

struct Free {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
  void operator()(X509* cert) const { X509_free(cert); }
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using Key = std::unique_ptr<EVP_PKEY, Free>;
using Cert = std::unique_ptr<X509, Free>;
using Bio = std::unique_ptr<BIO, Free>;

absl::Status OpenSslError(absl::string_view what) {
  char buffer[256] = {0};
  ERR_error_string_n(ERR_get_error(), buffer, sizeof(buffer));
  return absl::InternalError(absl::StrCat(what, ": ", buffer));
}

std::string BioContents(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(size));
}

absl::StatusOr<std::string> KeyPem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr)) {
    return OpenSslError("writing a key");
  }
  return BioContents(bio.get());
}

absl::StatusOr<std::string> CertPem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!PEM_write_bio_X509(bio.get(), cert)) return OpenSslError("writing a certificate");
  return BioContents(bio.get());
}

absl::Status AddExtension(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (extension == nullptr) return OpenSslError(absl::StrCat("extension ", value));
  const int added = X509_add_ext(cert, extension, -1);
  X509_EXTENSION_free(extension);
  if (!added) return OpenSslError("adding an extension");
  return absl::OkStatus();
}

// A new certificate for `key` named `common_name`, not yet signed or extended.
absl::StatusOr<Cert> NewCert(EVP_PKEY* key, const std::string& common_name) {
  Cert cert(X509_new());
  if (!cert || !X509_set_version(cert.get(), 2)) return OpenSslError("X509_new");
  unsigned char serial[16];
  RAND_bytes(serial, sizeof(serial));
  serial[0] &= 0x7F;  // positive
  BIGNUM* number = BN_bin2bn(serial, sizeof(serial), nullptr);
  BN_to_ASN1_INTEGER(number, X509_get_serialNumber(cert.get()));
  BN_free(number);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  if (!X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(common_name.c_str()), -1,
                                  -1, 0)) {
    return OpenSslError("setting the subject");
  }
  return cert;
}

absl::StatusOr<Key> ParseKey(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Key key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) return OpenSslError("reading a key");
  return key;
}

absl::StatusOr<Cert> ParseCert(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return OpenSslError("reading a certificate");
  return cert;
}

}  // namespace

absl::StatusOr<TestCa> TestCa::Create(const std::string& name) {
  Key key(EVP_EC_gen("P-256"));
  if (!key) return OpenSslError("generating the CA key");
  absl::StatusOr<Cert> cert = NewCert(key.get(), name);
  if (!cert.ok()) return cert.status();
  X509_set_issuer_name(cert->get(), X509_get_subject_name(cert->get()));
  for (const auto& [nid, value] :
       {std::pair<int, std::string>{NID_basic_constraints, "critical,CA:TRUE"},
        {NID_key_usage, "critical,keyCertSign,cRLSign"},
        {NID_subject_key_identifier, "hash"}}) {
    if (absl::Status s = AddExtension(cert->get(), cert->get(), nid, value); !s.ok()) return s;
  }
  if (!X509_sign(cert->get(), key.get(), EVP_sha256())) return OpenSslError("signing the CA");
  PemPair root;
  absl::StatusOr<std::string> cert_pem = CertPem(cert->get());
  absl::StatusOr<std::string> key_pem = KeyPem(key.get());
  if (!cert_pem.ok()) return cert_pem.status();
  if (!key_pem.ok()) return key_pem.status();
  root.cert = *std::move(cert_pem);
  root.key = *std::move(key_pem);
  return TestCa(std::move(root));
}

absl::StatusOr<PemPair> TestCa::Issue(const std::string& common_name,
                                      const std::vector<std::string>& sans, bool server) const {
  absl::StatusOr<Key> ca_key = ParseKey(root_.key);
  if (!ca_key.ok()) return ca_key.status();
  absl::StatusOr<Cert> ca_cert = ParseCert(root_.cert);
  if (!ca_cert.ok()) return ca_cert.status();
  Key key(EVP_EC_gen("P-256"));
  if (!key) return OpenSslError("generating a key");
  absl::StatusOr<Cert> cert = NewCert(key.get(), common_name);
  if (!cert.ok()) return cert.status();
  X509_set_issuer_name(cert->get(), X509_get_subject_name(ca_cert->get()));
  std::vector<std::pair<int, std::string>> extensions = {
      {NID_basic_constraints, "critical,CA:FALSE"},
      {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
      {NID_ext_key_usage, server ? "serverAuth" : "clientAuth"},
      {NID_authority_key_identifier, "keyid"}};
  if (!sans.empty()) extensions.emplace_back(NID_subject_alt_name, absl::StrJoin(sans, ","));
  for (const auto& [nid, value] : extensions) {
    if (absl::Status s = AddExtension(cert->get(), ca_cert->get(), nid, value); !s.ok()) return s;
  }
  if (!X509_sign(cert->get(), ca_key->get(), EVP_sha256())) {
    return OpenSslError("signing a certificate");
  }
  PemPair pair;
  absl::StatusOr<std::string> cert_pem = CertPem(cert->get());
  absl::StatusOr<std::string> key_pem = KeyPem(key.get());
  if (!cert_pem.ok()) return cert_pem.status();
  if (!key_pem.ok()) return key_pem.status();
  pair.cert = *std::move(cert_pem);
  pair.key = *std::move(key_pem);
  return pair;
}

}  // namespace outreach::testing
